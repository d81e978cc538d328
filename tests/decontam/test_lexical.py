import decontam.lexical as lexical
from decontam.lexical import LexicalIndex


def test_rare_shared_words_rank_first_and_ties_go_to_the_lower_row():
    rows = ["tea and gardening tips", "the zorblax function in rust", "tea and gardening tips",
            "the zorblax function in rust", "hello there", ""]
    index = LexicalIndex.build(rows)
    # rows 1 and 3 are the same text: the tie goes to the lower id; 5 (empty) never comes back
    assert index.search(["write the zorblax function"], k=2).tolist() == [[1, 3]]
    assert index.search(["qqq www"], k=2).tolist() == [[-1, -1]]  # no shared word: no candidate


def test_blocks_do_not_change_the_result(monkeypatch):
    """Scored in blocks of training rows or in one: the same rows, ties (repeated texts in other
    blocks) to the lower row id."""
    rows = [f"row {n} about {w} and {v}" for n, (w, v) in enumerate(zip("abcdefghij" * 300, "klmnopqrst" * 300))]
    queries = ["about c and m", "row 1717", "about j and t please"]
    index = LexicalIndex.build(rows)
    whole = index.search(queries, k=4)
    monkeypatch.setattr(lexical, "CELLS", 1)  # blocks of 1,000 rows
    assert index.search(queries, k=4).tolist() == whole.tolist()
    assert whole[0].tolist() == sorted(whole[0].tolist())  # all tied: the lowest ids, in order
    assert whole[1][0] == 1717
