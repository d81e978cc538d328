"""Review: the self-contained HTML review page over dedup and decontam decisions (`page.write_review_page`)."""
