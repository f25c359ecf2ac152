"""crds instrument plugin module for IRIS (no header hooks are needed)."""
