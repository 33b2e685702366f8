"""The data types and geometry: clouds, acquisitions, volumes, regions, arrays."""
