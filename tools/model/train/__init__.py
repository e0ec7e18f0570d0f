"""The nano model recipe: stage 1 segmenter, stage 2 LLM side, evaluation."""
