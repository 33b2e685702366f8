"""The data types and geometry: clouds, acquisitions, volumes, regions, arrays, and the
reconstruction configuration (``config``) with its presets."""
