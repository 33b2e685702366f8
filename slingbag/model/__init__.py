"""The operators over the kernels: radiator, sensor response, back-projection, splatting."""
