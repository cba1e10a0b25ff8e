"""Pure conversions between the domain and external formats (no network, no SDKs)."""
