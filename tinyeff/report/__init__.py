"""Reports: plots (matplotlib, Agg backend) and tables (Markdown, CSV, HTML) for training and compare runs."""
