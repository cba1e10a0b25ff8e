"""Orchestrators other than the local runner (``vmt.pipeline.runner``).

``vertex_pipelines``: the run as a Kubeflow Pipelines v2 pipeline on Vertex AI Pipelines, each
stage a component that calls the same stage function as the local runner (``run_folder`` holds a
run's state in its folder instead of SQLite; ``steps`` runs one stage; ``kfp_pipeline`` defines
and compiles the pipeline).
"""
