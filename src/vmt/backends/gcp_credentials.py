"""Google Cloud credentials from settings: application default credentials, or anonymous
credentials for local fakes and emulators (``VMT_GCP_ANONYMOUS_CREDENTIALS=1``)."""

from __future__ import annotations

from typing import Any

from vmt.config import Settings
from vmt.errors import AuthError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def gcp_credentials(settings: Settings) -> Any:
    """Credentials for GCS and Vertex AI. Raises AuthError naming how to provide them."""
    if settings.gcp_anonymous_credentials:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as exc:
        raise AuthError(
            "no Google Cloud credentials: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from exc
    return credentials
