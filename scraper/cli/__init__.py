"""`python -m scraper capture | crawl | status | check | overlay`: each module registers its
verbs on the command line and turns flags into calls of the crawl engine and the capture."""
