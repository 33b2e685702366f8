"""Files in and out: slingbag's HDF5, foreign formats, PLY, exports, atomic writes."""
