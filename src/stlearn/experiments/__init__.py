"""Experiment code behind the chapters, one module per chapter, so chapters hold only calls."""
