"""A minimal stand-in for ms-swift (the real package pulls in torch): just the reward registry."""
