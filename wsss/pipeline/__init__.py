"""The whole weakly supervised pipeline as a graph of resumable stages (tools/run_pipeline.py)."""
