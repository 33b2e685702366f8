"""The baselines slingbag is compared with: universal back-projection (``ubp``) and the
model-based reconstruction on a voxel grid (``model_based``, with its ``tv`` step)."""
