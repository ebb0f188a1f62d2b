"""The activation study of docs/activation.md: run, cost, learned parameters, plots, report."""
