"""Taichi kernels only: the radiator (forward and backward), the voxel splatting shader and
back-projection.  Kernels take plain arrays and scalars; they know nothing of files."""
