"""How far linear models on TF-IDF features go on a labelled CSV (text,category), by 5-fold
cross-validation: accuracy, and the share of messages that can be answered at >= 97 % accuracy
(ranked by confidence). The embedded classifier is such a model; this checks, with a reference
implementation, whether another feature set, regularisation or an ensemble would reach #15's
goals before we build it. Usage: classifier-ceiling.py DATA.csv"""
import csv
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
X = np.array([r["text"] for r in rows])
y = np.array([r["category"] for r in rows])
classes = np.unique(y)
folds = StratifiedKFold(5, shuffle=True, random_state=0)


def features(char_analyzer="char_wb", chars=(2, 5), words=(1, 2)):
    return make_union(
        TfidfVectorizer(analyzer="word", ngram_range=words, sublinear_tf=True, min_df=2,
                        token_pattern=r"(?u)\b\w[\w']*\b"),
        TfidfVectorizer(analyzer=char_analyzer, ngram_range=chars, sublinear_tf=True, min_df=2))


def softmax(z, t):
    z = z / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def report(name, scores, seconds):
    correct = (classes[scores.argmax(1)] == y).astype(float)
    order = np.argsort(-scores.max(1))
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.where(running >= 0.97)[0]
    coverage = (ok.max() + 1) / len(order) if len(ok) else 0.0
    print(f"{name:<58} {correct.mean():7.2%} {coverage:14.1%} {seconds:6.0f} s", flush=True)


print(f"{'model (5-fold CV)':<58} {'accuracy':>8} {'coverage@97%':>14} {'time':>8}")
runs = [
    ("LR (L2, C=20), words 1-2 + chars 2-5 in words", features(), LogisticRegression(C=20, max_iter=500)),
    ("LR (L2, C=20), words 1-2 + chars 1-5 across words", features("char", (1, 5)), LogisticRegression(C=20, max_iter=500)),
    ("linear SVM (C=0.5), words 1-2 + chars 2-5 in words", features(), LinearSVC(C=0.5)),
    ("linear SVM (C=0.5), words 1-3 + chars 2-6 across words", features("char", (2, 6), (1, 3)), LinearSVC(C=0.5)),
]
saved = {}
for name, feats, model in runs:
    started = time.time()
    method = "predict_proba" if hasattr(model, "predict_proba") else "decision_function"
    scores = cross_val_predict(make_pipeline(feats, model), X, y, cv=folds, method=method, n_jobs=2)
    saved[name] = scores if method == "predict_proba" else softmax(scores, 0.1)
    report(name, saved[name], time.time() - started)
lr, svm = saved[runs[0][0]], saved[runs[2][0]]
report("ensemble: LR and SVM (softmax, T=0.1), averaged", 0.5 * lr + 0.5 * svm, 0)
