from decontam.ngram import NgramIndex, normalize_tokens


def test_normalize_folds_case_punctuation_and_width():
    assert normalize_tokens("Hello,   WORLD!! ｆｕｌｌ") == ["hello", "world", "full"]


def test_cjk_characters_are_single_tokens():
    assert normalize_tokens("中文abc 问题") == ["中", "文", "abc", "问", "题"]


def test_verbatim_copy_with_changed_case_and_punctuation_matches():
    test = "Write a function that returns the sum of all even numbers in a list of integers given as input"
    index = NgramIndex([test], n=13)
    train = "Q: write a FUNCTION, that returns the sum of all even numbers in a list of integers -- given as input!"
    [m] = index.match(["unrelated text", train], start=10)
    assert (m.test_index, m.train_index) == (0, 11)
    assert m.n_shared >= 1 and m.examples


def test_rephrasing_does_not_match():
    index = NgramIndex(["Write a function that returns the sum of all even numbers in a list of integers"], n=13)
    assert index.match(["Create a routine adding up every even integer found in the given list"]) == []


def test_short_items_match_whole_but_tiny_ones_never():
    index = NgramIndex(["What is the capital city of France and Spain", "What is up?"], n=13)
    hits = index.match(["so, what is the capital city of France and Spain? Paris", "what is up?"])
    assert [(m.test_index, m.train_index) for m in hits] == [(0, 0)]


def test_ngrams_shared_by_several_items_are_not_evidence():
    loop = "for idx elem in enumerate numbers for idx2 elem2 in enumerate numbers if idx != idx2"
    items = [f"check whether two numbers are closer than a threshold {loop} return true",
             f"find the two numbers that are closest to each other {loop} return the pair"]
    index = NgramIndex(items, n=13)
    assert index.shared_dropped > 0
    # A row that copies the loop alone matches neither item; a row that copies item 0 matches item 0 only.
    assert index.match([loop]) == []
    assert {m.test_index for m in index.match([items[0]])} == {0}


def test_a_repeated_item_keeps_its_ngrams():
    text = "the quick brown fox jumps over the lazy dog and then runs far away into the woods"
    index = NgramIndex([text, text], n=13)
    assert {m.test_index for m in index.match(["so " + text])} == {0, 1}
