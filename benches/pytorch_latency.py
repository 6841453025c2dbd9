#!/usr/bin/env python3
"""PyTorch's own forward pass of all-MiniLM-L6-v2, one message at a time on
one thread: the baseline BENCHMARKS.md compares the semantic layer's latency
with. Each BANKING77 dev message once, mean-pooled and normalised as
sentence-transformers does; fp32, then bf16 (with its mean cosine to fp32).

Needs: pip install torch==2.4.0 "transformers<4.50" (models/fetch.sh gives
the model directory).
usage: taskset -c 0 python3 benches/pytorch_latency.py [MODEL_DIR] [DEV.csv]"""
import copy, csv, sys, time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

torch.set_num_threads(1)
model_dir = sys.argv[1] if len(sys.argv) > 1 else 'models/all-MiniLM-L6-v2'
dev = sys.argv[2] if len(sys.argv) > 2 else '../shared/data/banking77/dev.csv'
tok = AutoTokenizer.from_pretrained(model_dir)
fp32 = AutoModel.from_pretrained(model_dir).eval()
texts = [r['text'] for r in csv.DictReader(open(dev, newline='', encoding='utf-8'))]


def embed(model, text):
    hidden = model(**tok([text], return_tensors='pt')).last_hidden_state
    v = hidden.float().mean(1)[0]
    return v / v.norm()


with torch.inference_mode():
    reference = [embed(fp32, t) for t in texts[:300]]
    for name, model in [('fp32', fp32), ('bf16', copy.deepcopy(fp32).to(torch.bfloat16))]:
        for t in texts[:20]:
            embed(model, t)
        ms = []
        for t in texts:
            start = time.perf_counter()
            embed(model, t)
            ms.append((time.perf_counter() - start) * 1e3)
        cos = np.mean([float(embed(model, t) @ r) for t, r in zip(texts[:300], reference)])
        p50, p99, top = np.percentile(ms, [50, 99, 100])
        print(f'{name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {top:.2f} ms; mean cosine to fp32 {cos:.5f}', flush=True)
