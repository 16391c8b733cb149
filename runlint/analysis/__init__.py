"""Shared judgement helpers for the rules (torch-free): curves, epochs, layers, expectations."""
