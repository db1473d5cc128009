"""Console widgets only: the graphical console view, the serial terminal and their panel."""
