"""Export stage: the dataset export, its data card, and the review decisions both honour."""
