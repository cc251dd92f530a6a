"""clocklab orchestrator."""
