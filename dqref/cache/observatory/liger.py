"""crds instrument plugin module for LIGER (no header hooks are needed)."""
