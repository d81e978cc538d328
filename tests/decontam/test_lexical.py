import decontam.ngram as lexical
from decontam.ngram import LexicalIndex


def test_rare_shared_words_rank_first_and_repeated_texts_go_to_the_lower_row():
    rows = ["tea and gardening tips", "the zorblax function in rust", "tea and gardening tips",
            "the zorblax function in rust", "hello there", ""]
    index = LexicalIndex.build(rows)
    # rows 1 and 3 are the same text: the lower id first; 5 (empty) never comes back
    assert index.search(["write the zorblax function"], k=2).tolist() == [[1, 3]]
    assert index.search(["qqq www"], k=2).tolist() == [[-1, -1]]  # no shared word: no candidate


ROWS = [f"row about {w} and {v} number {n % 7}" for n, (w, v) in enumerate(zip("abcdefghij" * 300, "klmnopqrst" * 300))]
QUERIES = ["about c and m", "row about j and t number 3", "about a please"]


def test_ties_do_not_depend_on_row_order():
    """Many rows tie (the same words in another order of rows): the rows found are the same texts
    whichever order the training side comes in."""
    found = LexicalIndex.build(ROWS).search(QUERIES, k=4)
    perm = list(reversed(range(len(ROWS))))
    again = LexicalIndex.build([ROWS[p] for p in perm]).search(QUERIES, k=4)
    assert [[ROWS[j] for j in r] for r in found] == [[ROWS[perm[j]] for j in r] for r in again]


def test_blocks_do_not_change_the_result(monkeypatch):
    index = LexicalIndex.build(ROWS)
    whole = index.search(QUERIES, k=4)
    monkeypatch.setattr(lexical, "CELLS", 1)  # blocks of 1,000 training rows
    assert index.search(QUERIES, k=4).tolist() == whole.tolist()


def test_a_check_without_the_lexical_channel_keeps_its_lake_key():
    """Rows a check wrote to the lake before the channel existed stay valid when it is off (the
    default); turning it on is another check."""
    import dataclasses
    import hashlib
    import json

    from decontam.check import CheckConfig
    from decontam.lake import check_key

    cfg = dataclasses.asdict(CheckConfig())
    cfg.pop("cache_dir"), cfg.pop("lexical_k")
    before = hashlib.sha256(json.dumps([["humaneval"], cfg, None], sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert check_key(["humaneval"], CheckConfig(), None) == before
    assert check_key(["humaneval"], CheckConfig(lexical_k=5), None) != before
