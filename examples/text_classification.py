"""Sentence classification with Embedding(mask_zero=True) + LSTM on a tiny sentiment task.

The task is generated here (no download): short reviews built from a small
vocabulary, labelled positive or negative. A word like "not" or "never" flips
the sentiment of the next word, so word counts alone cannot solve it: the model
has to read in order. Sentences have different lengths and are padded with id
0 at the end; `Embedding(mask_zero=True)` turns the padding into a mask, and
the LSTM carries its state unchanged over the padded steps.

    python text_classification.py              # 4 epochs
    python text_classification.py --epochs 2   # a quick check
"""

import argparse

import numpy as np

import lstm_fast as lf
from lstm_fast.layers import LSTM, Dense, Embedding
from lstm_fast.models import Sequential

POSITIVE = ["good", "great", "excellent", "lovely", "fun", "clever", "moving", "superb"]
NEGATIVE = ["bad", "awful", "boring", "dull", "weak", "clumsy", "tedious", "poor"]
NEGATORS = ["not", "never", "hardly"]
FILLERS = [
    "the",
    "film",
    "plot",
    "was",
    "and",
    "acting",
    "really",
    "quite",
    "music",
    "ending",
    "story",
    "very",
    "it",
    "a",
    "bit",
    "cast",
]
VOCAB = ["<pad>"] + POSITIVE + NEGATIVE + NEGATORS + FILLERS  # id 0 is the padding
WORD_ID = {word: i for i, word in enumerate(VOCAB)}
MAX_LEN = 12


def make_sentence(rng):
    """A list of words and its label (1 positive, 0 negative)."""
    words, score, polarity = [], 0, 1
    for _ in range(rng.integers(1, 3)):  # one or two opinions per sentence
        words += [str(w) for w in rng.choice(FILLERS, size=rng.integers(0, 3))]
        word_polarity = 1 if rng.random() < 0.5 else -1
        negated = rng.random() < 0.4
        if negated:
            words.append(str(rng.choice(NEGATORS)))
        words.append(str(rng.choice(POSITIVE if word_polarity > 0 else NEGATIVE)))
        polarity = -word_polarity if negated else word_polarity
        score += polarity
    words += [str(w) for w in rng.choice(FILLERS, size=rng.integers(0, 2))]
    if score == 0:  # mixed opinions: the last one decides
        score = polarity
    return words, int(score > 0)


def encode(sentences):
    """(N, MAX_LEN) int ids, padded with 0 at the end (post-padding, as the mask needs)."""
    ids = np.zeros((len(sentences), MAX_LEN), dtype=np.int64)
    for row, words in enumerate(sentences):
        ids[row, : len(words)] = [WORD_ID[w] for w in words]
    return ids


def make_dataset(n, rng):
    pairs = [make_sentence(rng) for _ in range(n)]
    sentences = [words for words, _ in pairs]
    return sentences, encode(sentences), np.array([[label] for _, label in pairs], np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (default: 4)")
    parser.add_argument(
        "--samples", type=int, default=3000, help="training sentences (default: 3000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    lf.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    _, x_train, y_train = make_dataset(args.samples, rng)
    test_sentences, x_test, y_test = make_dataset(1000, rng)
    print(f"vocabulary: {len(VOCAB)} words; train {len(x_train)}, test {len(x_test)} sentences")
    print("example:", " ".join(test_sentences[0]), "->", "positive" if y_test[0, 0] else "negative")

    model = Sequential(
        [
            Embedding(len(VOCAB), 16, mask_zero=True, input_shape=(MAX_LEN,)),
            LSTM(32),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=lf.optimizers.Adam(learning_rate=1e-2),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1, verbose=2)

    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    negated = np.array([any(w in NEGATORS for w in s) for s in test_sentences])
    predicted = (model.predict(x_test, verbose=0)[:, 0] > 0.5).astype(np.float32)
    accuracy_negated = float(np.mean(predicted[negated] == y_test[negated, 0]))
    majority = max(y_test.mean(), 1 - y_test.mean())
    print(f"test accuracy: {accuracy:.3f} (majority class: {majority:.3f})")
    print(f"test accuracy on sentences with a negation: {accuracy_negated:.3f}")

    for text in [
        "the film was not good",
        "never boring and really clever",
        "the plot was dull",
        "the acting was hardly superb",
    ]:
        p = model.predict(encode([text.split()]), verbose=0)[0, 0]
        print(f"  {text!r}: P(positive) = {p:.2f}")


if __name__ == "__main__":
    main()
