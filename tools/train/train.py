#!/usr/bin/python3
"""Step 3 of the bundled model: trains the Llama network of llama_model.py on the KJV training ids.

    train.py WORK_DIR OUT_DIR [--seed 1234] [--steps 1500] [--time-budget SECONDS] [model and optimiser options]

Reads WORK_DIR/{train,valid,heldout}.npy and meta.json (train_tokenizer.py). Each training sequence
is BOS followed by ctx-1 ids from a random offset, with the ctx ids from that offset as targets: every
position of the context is trained, and a sequence starts mid-text as `tfm perplexity` windows do. AdamW (betas 0.9/0.95, weight decay on matrices only), linear warm-up then
cosine decay to a tenth of the peak, gradient clipping at 1, dropout on the embedding and on both
residual branches; bf16 autocast on a GPU, f32 on the CPU.

Every --eval-every steps the validation perplexity is computed on exactly the windows `tfm
perplexity --ctx CTX` scores (consecutive windows of ctx-1 ids, each after BOS); the checkpoint with
the lowest one is kept. With --time-budget, steps 10-30 are timed and --steps is lowered so the run
fits (the number actually run is recorded: pass it as --steps to repeat the run).

Writes OUT_DIR/ckpt-N.npz (the kept checkpoint's float32 weights, HF tensor names, split into files
of at most ~12 MB) and OUT_DIR/train_log.json: the command, configuration, seed, steps, wall time,
the train-loss curve (mean of every 10 steps), validation evaluations, and the kept checkpoint's
validation and held-out perplexity in f32.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_model import LlamaLM, n_params  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--batch", type=int, default=64, help="sequences per step")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--time-budget", type=float, default=0, help="seconds for the whole run; 0 = no limit")
    ap.add_argument("--device", default="auto")
    return ap.parse_args(argv)


def eval_windows(ids, ctx, bos):
    """(inputs [n, ctx-1], targets [n, ctx-1]) of the windows `tfm perplexity --ctx ctx` scores: window w
    holds L <= ctx-1 ids t[s..s+L); its input is BOS, t[s..s+L-1) and every id t[s+j] is the target at
    position j. Padding has target -100."""
    W = ctx - 1
    n = (len(ids) + W - 1) // W
    inp = np.zeros((n, W), np.int64)
    tgt = np.full((n, W), -100, np.int64)
    for w in range(n):
        t = ids[w * W:(w + 1) * W].astype(np.int64)
        inp[w, 0] = bos
        inp[w, 1:len(t)] = t[:-1]
        tgt[w, :len(t)] = t
    return torch.from_numpy(inp), torch.from_numpy(tgt)


@torch.no_grad()
def perplexity(model, windows, device, autocast, batch=32):
    """exp(mean nll) over every scored id of the windows; also returns the nll sum and count."""
    model.eval()
    inp, tgt = windows
    total, count = 0.0, 0
    for i in range(0, len(inp), batch):
        x, y = inp[i:i + batch].to(device), tgt[i:i + batch].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                ignore_index=-100, reduction="sum")
        total += float(nll)
        count += int((y != -100).sum())
    model.train()
    return math.exp(total / count), total, count


def lr_at(step, a, total):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = min(1.0, (step - a.warmup) / max(1, total - a.warmup))
    return a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def save_shards(state, out_dir, max_bytes=12_000_000):
    shards, cur, size = [], {}, 0
    for name, t in state.items():
        arr = t.float().numpy()
        if cur and size + arr.nbytes > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[name] = arr
        size += arr.nbytes
    shards.append(cur)
    for i, shard in enumerate(shards):
        np.savez(os.path.join(out_dir, f"ckpt-{i}.npz"), **shard)
    return len(shards)


def main(argv=None):
    a = parse_args(argv)
    t_start = time.time()
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.work_dir, "meta.json")) as f:
        meta = json.load(f)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    autocast = device.type == "cuda"
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=meta["vocab_size"],
               hidden_size=a.dim, num_hidden_layers=a.layers, num_attention_heads=a.heads,
               num_key_value_heads=a.kv_heads, head_dim=a.dim // a.heads, intermediate_size=a.ffn,
               max_position_embeddings=a.ctx, rms_norm_eps=1e-5, rope_theta=a.rope_theta, rope_scaling=None,
               tie_word_embeddings=False, hidden_act="silu", attention_bias=False, mlp_bias=False,
               bos_token_id=meta["bos"], eos_token_id=meta["eos"])
    model = LlamaLM(cfg, dropout=a.dropout).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    train_ids = torch.from_numpy(np.load(os.path.join(a.work_dir, "train.npy")).astype(np.int64)).to(device)
    valid = eval_windows(np.load(os.path.join(a.work_dir, "valid.npy")), a.ctx, meta["bos"])
    heldout = eval_windows(np.load(os.path.join(a.work_dir, "heldout.npy")), a.ctx, meta["bos"])
    gen = torch.Generator().manual_seed(a.seed)
    bos_col = torch.full((a.batch, 1), meta["bos"], dtype=torch.long, device=device)
    span = torch.arange(a.ctx, device=device)

    def batch():
        # x = BOS, t[s..s+ctx-1); y = t[s..s+ctx)
        starts = torch.randint(0, len(train_ids) - a.ctx, (a.batch,), generator=gen).to(device)
        y = train_ids[starts[:, None] + span]
        return torch.cat((bos_col, y[:, :-1]), dim=1), y

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    log = dict(command=" ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
               config=cfg, args=vars(a), n_params=n_params(model), torch=torch.__version__,
               device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
               tokens_per_step=a.batch * a.ctx, n_train_tokens=len(train_ids), train_curve=[], valid_curve=[])
    print(f"{n_params(model)} parameters on {log['device']}, {len(train_ids)} training tokens", flush=True)

    ppl, _, _ = perplexity(model, valid, device, autocast)  # the first call also warms the GPU up
    sync()
    t0 = time.time()
    ppl, _, _ = perplexity(model, valid, device, autocast)
    sync()
    eval_seconds = time.time() - t0
    log["valid_curve"].append([0, math.log(ppl)])
    best = (math.log(ppl), 0, {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()})

    total_steps, losses, step = a.steps, [], 0
    t_train = time.time()
    timer = None
    while step < total_steps:
        if step == 10:
            sync()
            timer = time.time()
        if step == 30 and a.time_budget > 0:
            sync()
            per_step = (time.time() - timer) / 20 + eval_seconds / a.eval_every
            left = a.time_budget - (time.time() - t_start) - 4 * eval_seconds - 10
            fit = 30 + int(left / per_step)
            if fit < total_steps:
                total_steps = max(fit, a.warmup + 1, step + 1)
                print(f"time budget: {per_step * 1000:.1f} ms a step, running {total_steps} steps", flush=True)
            log["seconds_per_step_measured"] = per_step
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a, total_steps)
        x, y = batch()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        losses.append(loss.detach())
        step += 1
        if step % 10 == 0:
            log["train_curve"].append([step, float(torch.stack(losses).mean())])
            losses = []
        if step % a.eval_every == 0 or step == total_steps:
            ppl, _, _ = perplexity(model, valid, device, autocast)
            log["valid_curve"].append([step, math.log(ppl)])
            if math.log(ppl) < best[0]:
                best = (math.log(ppl), step, {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()})
            print(f"step {step}/{total_steps}: train loss {log['train_curve'][-1][1]:.4f}, valid ppl {ppl:.3f} "
                  f"(best {math.exp(best[0]):.3f} at {best[1]}), {time.time() - t_train:.0f} s", flush=True)
    sync()
    log["steps"] = total_steps
    log["train_seconds"] = time.time() - t_train

    model.load_state_dict(best[2], strict=False)
    model.float()
    v_ppl, v_nll, v_n = perplexity(model, valid, device, autocast=False)
    h_ppl, h_nll, h_n = perplexity(model, heldout, device, autocast=False)
    log.update(best_step=best[1], valid_ppl_f32=v_ppl, heldout_ppl_f32=h_ppl, heldout_nll_sum=h_nll,
               heldout_scored=h_n, valid_scored=v_n, n_shards=save_shards(best[2], a.out_dir),
               wall_seconds=time.time() - t_start)
    with open(os.path.join(a.out_dir, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"kept step {best[1]}: valid ppl {v_ppl:.3f}, held-out ppl {h_ppl:.3f} (f32), "
          f"{log['wall_seconds']:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
