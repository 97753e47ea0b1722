"""Datasets: what providers share, behind which connector, under which usage policy."""
