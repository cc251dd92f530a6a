"""clocklab analysis."""
