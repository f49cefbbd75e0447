"""semcore: the reproducible companion of SemCORE (arXiv 2504.13172) and SSI (arXiv 2509.17359).

One module per concept; the numbered notebooks call these and only plot."""

__version__ = "0.1.0"
