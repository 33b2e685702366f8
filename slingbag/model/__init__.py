"""The operators over the kernels: radiator (forward and backward), sensor response, splatting."""
