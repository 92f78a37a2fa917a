"""
Every results table, made from the committed results JSON in bench/results/ alone: nothing in them is typed
by hand. bench/README.md holds all of them (star, maze, Shakespeare, Edit Flows' edits, throughputs, the
comparison with the XLM package, speed changes, the GPU check); README.md holds one compact star table, the
list of shipped models and the GPU estimate. Each sits between `<!-- table:NAME -->` and
`<!-- /table:NAME -->`; tests/test_readme.py checks that both files hold exactly what this prints.

    python bench/readme_tables.py            # print
    python bench/readme_tables.py --write    # update bench/README.md and README.md
"""
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import star_table  # noqa: E402
# the papers' spellings, BD3-LM's block length, wall times, the † of rows measured before a fix: as the star table
from star_table import before, before_note, blocks, shown, wall, wall_note  # noqa: E402
RESULTS = os.path.join(ROOT, "bench", "results")
FILES = {  # table -> the results files it is made from, in row order
    "train_throughput": ["train_throughput.json", "train_throughput_768.json"],
    "compare_xlm": ["compare_xlm.json", "compare_xlm_768.json"],
    "compare_xlm_sample": ["compare_xlm_sample.json"],
    "sample_throughput": ["sample_throughput.json", "sample_throughput_ilm_easy99.json",
                          "sample_throughput_ilm_easy100.json", "sample_throughput_bd3lm.json"],
    "train_ab": sorted((f for f in os.listdir(RESULTS) if f.startswith("train_ab_") and f.endswith(".json")),
                       key=lambda f: [w in f for w in ("hard", "medium", "easy")]),  # easy, medium, hard
}
med = statistics.median


def load(name: str) -> dict:
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def fields(line: str) -> dict:
    """The key=value fields of one XLM_RESULT / XLM_PRED_RESULT line."""
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def rate(x: float) -> str:
    return format(x, ".2f" if x >= 0.1 else ".2g")


def span(xs: list, fmt: str) -> str:
    """'a' if all of xs print alike, else 'min–max'."""
    lo, hi = format(min(xs), fmt), format(max(xs), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def sources(names: list[str]) -> list[str]:
    """One line per results file: the command that wrote it, the machine it ran on, and the code it measured
    with the date (or, for files written before the scripts recorded that, the commit it landed in)."""
    out = []
    for name in names:
        r = load(name)
        m = r["machine"]
        env = f"OMP_NUM_THREADS={r['threads_env']} " if r.get("threads_env") else ""
        threads = m.get("threads") or r.get("threads") or r.get("threads_env") or "?"
        when = f"code {r['code']}, {r['date']}" if "code" in r else \
            f"{r['date']}" if "date" in r else \
            f"landed in {r['landed']['commit']} on {r['landed']['date']}"  # files older than the fields
        out.append(f"- `bench/results/{name}`: `{env}python {r['command']}`; {m['cpus']} CPUs, {threads} torch "
                   f"thread(s), `{m['platform']}`; {when}")
    return out


def train_throughput() -> str:
    out = ["| model | size (d/L/H) | compile | steps/s | real tokens/s | of matmul peak | 1st step (s) | "
           "peak RSS (MB) | run wall (s) | JSON |", "|---|---|---|---|---|---|---|---|---|---|"]
    peaks = []
    for name in FILES["train_throughput"]:
        r = load(name)
        peak = r["matmul_peak_flop_per_s"]
        peaks.append(f"{peak / 1e9:.1f} GFLOP/s in `{name}`")
        rows = {}
        for x in r["results"]:
            rows.setdefault((x["model"], x["size"]), []).append(x)
        for (model, size), xs in rows.items():
            xs = sorted(xs, key=lambda x: x["compile"])  # no, then yes
            col = lambda f: " / ".join(f(x) for x in xs)  # noqa: E731
            out.append(" | ".join([
                f"| {shown(model)}", size, col(lambda x: "yes" if x["compile"] else "no"),
                col(lambda x: rate(x["steps_per_s"])),
                col(lambda x: f"{x['tokens_per_s']:,.0f}"), col(lambda x: f"{100 * x['flop_per_s'] / peak:.0f}%"),
                col(lambda x: f"{x['first_step_s']:.1f}"), col(lambda x: f"{x['peak_rss_MB']:,.0f}"),
                col(lambda x: f"{x['wall_s']:.0f}"), f"`{name}` |"]))
    out += ["", f"Matmul peak (fp32 2048³ `torch.mm`, measured by each command before its runs): {'; '.join(peaks)}.", ""]
    return "\n".join(out + sources(FILES["train_throughput"]))


def compare_xlm() -> str:
    out = ["| model | size | rounds | steps/s ours / XLM | ratio | command to 1st step ours / XLM (s) | "
           "peak RSS ours / XLM (MB) | load before runs | JSON |", "|---|---|---|---|---|---|---|---|---|"]
    for name in FILES["compare_xlm"]:
        for row in load(name)["rows"]:
            ours, theirs = row["ours"], row["theirs"]
            rss = [float(fields(t["raw"])["peak_rss_mb"]) for t in theirs]
            loads = [r["load_before"] for r in ours + theirs if "load_before" in r]
            out.append(f"| {shown(row['model'])} | {row['size']} | {len(ours)} | "
                       f"{rate(med(o['steps_per_s'] for o in ours))} / {rate(med(t['steps_per_s'] for t in theirs))} | "
                       f"{row['steps_per_s_ratio']:.2f}× | {span([o['first_step_s'] for o in ours], '.1f')} / "
                       f"{span([t['first_step_s'] for t in theirs], '.1f')} | "
                       f"{span([o['peak_rss_MB'] for o in ours], ',.0f')} / {span(rss, ',.0f')} | "
                       f"{span(loads, '.1f') if loads else 'not recorded'} | `{name}` |")
    out += ["", "Steps/s and the ratio: medians over the rounds; the other columns: the range over the rounds. "
            "Load: the machine's 1-minute load average before each run; the benchmark's own one-thread runs keep it "
            "near 1, so about 1 means nothing else ran (files without it were measured before it was recorded).", ""]
    return "\n".join(out + sources(FILES["compare_xlm"]))


def compare_xlm_sample() -> str:
    out = ["| size | batch | examples | examples/s ours / XLM | ratio |", "|---|---|---|---|---|"]
    for name in FILES["compare_xlm_sample"]:
        for row in load(name)["rows"]:
            out.append(f"| {row['size']} | {row['batch']} | {row['examples']} | "
                       f"{med(o['examples_per_s'] for o in row['ours']):.1f} / "
                       f"{med(t['examples_per_s'] for t in row['theirs']):.1f} | {row['examples_per_s_ratio']:.2f}× |")
    out += ["", "Medians over the rounds.", ""]
    return "\n".join(out + sources(FILES["compare_xlm_sample"]))


def sample_throughput() -> str:
    out = ["| model | weights | setting | examples/s, batch 1 | examples/s, batch 64 | JSON |",
           "|---|---|---|---|---|---|"]
    timed = set()
    for name in FILES["sample_throughput"]:
        groups = {}  # (model, weights, settings but the cache switch, cache switch) -> {(cache on?, batch): result}
        for x in load(name)["results"]:
            cache = next((k for k in ("kv_cache", "cache") if k in x["settings"]), None)
            rest = tuple((k, v) for k, v in x["settings"].items() if k != cache)
            groups.setdefault((x["model"], x["weights"], rest, cache), {})[(x["settings"].get(cache), x["batch"])] = x
            timed.add((x["batch"], x["examples"]))
        for (model, weights, rest, cache), g in groups.items():
            setting = [f"{v} {k}" for k, v in rest]
            if cache:
                setting.append(("KV cache" if cache == "kv_cache" else "cache") + " / none")
            elif not rest:
                setting.append("the checkpoint's" if weights == "trained" else "defaults")
            cells = []
            for b in (1, 64):
                if cache:
                    on, off = g[(True, b)]["examples_per_s"], g[(False, b)]["examples_per_s"]
                    cells.append(f"{on:.1f} / {off:.1f} ({on / off:.1f}×)")
                else:
                    cells.append(f"{g[(None, b)]['examples_per_s']:.1f}")
            if weights == "trained":
                any_b = {bb: x for (_, bb), x in g.items()}  # the cache never changes the tokens: any one
                right = " / ".join(f"{100 * any_b[b]['seq_acc']:.0f}%" for b in (1, 64))
                weights += f" ({right} of the timed samples right, batch 1 / 64)"
            out.append(f"| {shown(model)} | {weights} | {', '.join(setting)} | {cells[0]} | {cells[1]} | `{name}` |")
    out += ["", "Prompts timed per measurement, after one warm-up batch: " +
            "; ".join(f"{n} at batch {b}" for b, n in sorted(timed)) + ". The JSON holds no wall times.", ""]
    return "\n".join(out + sources(FILES["sample_throughput"]))


def rows_in(name: str) -> list[dict]:
    """Every results row in bench/results/<name>/ (star_row.py --out), in file-name order; none if no folder."""
    folder = os.path.join(RESULTS, name)
    return [json.load(open(os.path.join(folder, f))) for f in sorted(os.listdir(folder)) if f.endswith(".json")] \
        if os.path.isdir(folder) else []


def shakespeare_char() -> str:
    """One row per bench/results/shakespeare_char/<config>_seed<k>.json (bench/star_row.py --split=val), and
    the corpus: held-out rows scored by the same ARLM reference."""
    rows = rows_in("shakespeare_char")
    if not rows:
        return "No rows yet: `bench/results/shakespeare_char/` is empty."
    out = ["| model | seed | val NLL / unit | samples' NLL under ARLM | entropy | length: mean (quartiles) | "
           "length W1 | steps | wall | JSON |", "|---|---|---|---|---|---|---|---|---|---|"]
    corpus = None
    for r in rows:
        e = r["eval"]
        nll = "–" if e.get("nll") is None else ("≤ " if r["nll_kind"] == "bound" else "") + f"{e['nll']:.3f}" + \
            before(r, "nll")
        gen = f"{e['gen_nll']:.3f}" if "gen_nll" in e else "–"
        quart = "/".join(str(q) for q in e.get("gen_len_quartiles", []))
        out.append(f"| {shown(r['model'])}{blocks(r)} | {r['seed']} | {nll} | {gen} | {e.get('gen_entropy', 0):.2f} | "
                   f"{e.get('gen_mean_len', 0):.0f} ({quart}) | {e.get('len_w1', 0):.1f} | {r['steps']} | "
                   f"{wall(r)} | `{r['name']}_seed{r['seed']}.json` |")
        corpus = corpus or (e if "corpus_nll" in e else None)
    if corpus:
        quart = "/".join(str(q) for q in corpus["corpus_len_quartiles"])
        out.append(f"| corpus ({corpus['gen_samples']} val rows) | | | {corpus['corpus_nll']:.3f} | "
                   f"{corpus['corpus_entropy']:.2f} | {corpus['corpus_mean_len']:.0f} ({quart}) | 0 | | | |")
    out += ["", "NLL in nats per unit (characters + the end, models/README.md); entropy: unigram entropy within a "
            "sample (nats); lengths in characters; W1: the mean gap between sorted sample and real lengths.", ""]
    for note in wall_note(rows) + before_note(rows, "nll", "shakespeare_char"):
        out += [note, ""]
    for r in rows:
        m = r["machine"]
        out.append(f"- `{r['name']}_seed{r['seed']}.json`: `{r['command']}`, then `{r['eval_command']}`; "
                   f"{m['cpu']}, {m['threads']} thread(s), load {m['load_avg_at_end'][0]} at the end; {r['date']}")
    return "\n".join(out)


def maze() -> str:
    """One row per bench/results/maze/<config>_seed<k>.json (bench/star_row.py --out=bench/results/maze): success
    is eval.py's valid_acc (data/maze/score.py judges each path), exact the match with the shortest path."""
    rows = rows_in("maze")
    if not rows:
        return "No rows yet: `bench/results/maze/` is empty."
    out = ["| model | task | seed | success % | exact % | token % | steps | wall | JSON |",
           "|---|---|---|---|---|---|---|---|---|"]
    tier = {"easy": 0, "medium": 1, "hard": 2}  # the tiers in order of difficulty, others after them
    for r in sorted(rows, key=lambda r: (tier.get(r["dataset"].split("/")[-1], 3), r["dataset"], r["model"],
                                         r["steps"], r["seed"])):
        e = r["eval"]
        mark = before(r, "accuracy")
        out.append(f"| {shown(r['model'])} | {r['dataset'].split('/')[-1]} | {r['seed']} | {100 * e['valid_acc']:.1f}{mark} | "
                   f"{100 * r['test_seq_acc']:.1f}{mark} | {100 * r['test_tok_acc']:.1f}{mark} | {r['steps']} | "
                   f"{wall(r)} | `{r['name']}_seed{r['seed']}.json` |")
    out += [""]
    for note in wall_note(rows) + before_note(rows, "accuracy", "maze"):
        out += [note, ""]
    for r in rows:
        m = r["machine"]
        out.append(f"- `{r['name']}_seed{r['seed']}.json`: `{r['command']}`, then `{r['eval_command']}`; "
                   f"{m['cpu']}, {m['threads']} thread(s), load {m['load_avg_at_end'][0]} at the end; {r['date']}")
    return "\n".join(out)


def speedrun() -> str:
    """One row per bench/results/speedrun/<config>_seed<k>.json (bench/star_row.py --out=bench/results/speedrun):
    the time a record config first reaches 99% validation sequence accuracy (200 val prompts at each eval),
    its whole training wall time (evaluations and checkpoints included) and the test split's score."""
    rows = rows_in("speedrun")
    if not rows:
        return "No records yet: `bench/results/speedrun/` is empty."
    out = ["| model | task | seed | to 99% val | steps to 99% | training wall | test seq % | ranks x threads | "
           "date | commit | config |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"], r["seed"])):
        hit = r.get("first_99")
        to99 = f"{hit['train_s'] / 60:.1f} min" if hit else "never"
        out.append(f"| {shown(r['model'])} | {r['dataset'].split('/')[-1]} | {r['seed']} | {to99} | "
                   f"{hit['step'] if hit else '–'} | {r['wall_s'] / 60:.1f} min | {100 * r['test_seq_acc']:.1f} | "
                   f"{r.get('ranks', 1)} x {r.get('threads') or '?'} | {r['date']} | {r['git'][:7]} | "
                   f"`{r['config']}` |")
    out += [""]
    for r in rows:
        m = r["machine"]
        out.append(f"- `{r['name']}_seed{r['seed']}.json`: `{r['command']}`, then `{r['eval_command']}`; "
                   f"{m['cpu']}, {m['cores']} cores, load {m['load_avg_at_end'][0]} at the end; {r['date']}")
    return "\n".join(out)


def edit_stats() -> str:
    """One row per bench/results/edit_stats_*.json (bench/edit_stats.py): what an Edit Flows sampler's edits were."""
    names = sorted(f for f in os.listdir(RESULTS) if f.startswith("edit_stats_") and f.endswith(".json"))
    if not names:
        return "No rows yet: run `python bench/edit_stats.py --ckpt=...`."
    out = ["| run | prompts | x0 | sampler | rows | edits / row | insert / delete / substitute | of masks: del / sub "
           "| undoing real tokens: del / sub | output length | seq % | JSON |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        r = load(name)
        s, pr, un = r["sampler"], r["per_row"], r["undo_per_row"]
        x0 = f"masks ({s.get('n_masks') or 'longest target'})" if s["x0"] == "masks" else s["x0"]
        order = s.get("mask_order") or ("confidence" if "--mask_order=confidence" in r["command"] else "random")
        order = ", masks in confidence order" if order == "confidence" else ""  # files before 'mask_order' was kept
        share = " / ".join(f"{100 * r['share'][k]:.1f}%" for k in ("ins", "del", "sub"))
        acc = "–" if r.get("seq_acc") is None else f"{100 * r['seq_acc']:.1f}"
        out.append(f"| `{os.path.basename(os.path.dirname(r['ckpt']))}` step {r['step']} | "
                   f"{'none' if r['unconditional'] else r['split']} | {x0} | {s['steps']} steps{order} | {r['rows']} | "
                   f"{r['edits_per_row']:.1f} | {share} | "
                   f"{pr['del_mask']:.2f} / {pr['sub_mask']:.2f} | {un['del']:.2f} / {un['sub']:.2f} | "
                   f"{r['mean_output_len']:.1f} | {acc} | `{name}` |")
    out += ["", "Edits per row, as shares of all edits and per row; an undo deletes or substitutes a token the sampler "
            "had written (x0 has only masks or nothing, so no training path ever does that).", ""]
    for name in names:
        r = load(name)
        m = r["machine"]
        out.append(f"- `bench/results/{name}`: `{r['command']}`; {r['seconds']:.0f} s, "
                   f"{m['cpus']} CPUs, {m['threads']} torch thread(s), `{m['platform']}`; {r['date']}")
    return "\n".join(out)


def train_ab() -> str:
    out = ["| model | data | size | steps/s base / ours | ratio | commits base → ours | load at the end | JSON |",
           "|---|---|---|---|---|---|---|---|"]
    for name in FILES["train_ab"]:
        r = load(name)
        for row in r["rows"]:
            out.append(f"| {shown(row['model'])} | {r['dataset']} | {row['size']} | "
                       f"{med(row['base_steps_per_s']):.2f} / {med(row['ours_steps_per_s']):.2f} | "
                       f"{row['ratio']:.2f}× | `{r['base'][:7]}` → `{r['ours'][:7]}`{'+' if '+' in r['ours'] else ''} | "
                       f"{r['machine']['load_avg_at_end'][0]} | `{name}` |")
    out += ["", "Steps/s: medians over each side's rounds, each round one train.py process of 30 steps at batch 64, "
            "the two sides in turn.", ""]
    return "\n".join(out + sources(FILES["train_ab"])).rstrip("\n")


def gpu_check() -> str:
    """bench/results/gpu_check_*.json (bash bench/gpu_check.sh): each section of each run, passed or not."""
    names = sorted(f for f in os.listdir(RESULTS) if f.startswith("gpu_check_") and f.endswith(".json"))
    out = ["| GPU | run | torch | section | ok | seconds | JSON |", "|---|---|---|---|---|---|---|"]
    for name in names:
        r = load(name)
        for run in r["runs"]:
            for key, sec in run.items():
                if isinstance(sec, dict) and "ok" in sec:
                    out.append(f"| {run['device']} x{run['gpus']} | {run['date']} | {run['torch']} | {key} | "
                               f"{'yes' if sec['ok'] else 'no'} | {sec.get('section_s', '–')} | `{name}` |")
    for name in names:
        for run in load(name)["runs"]:
            if "lm_throughput" in run:
                t = run["lm_throughput"]
                out += ["", f"LM throughput on {run['device']} ({run['date']}): {t['shape']}, "
                        f"{'compiled, ' if t['compile'] else ''}bf16: {t['step_ms']} ms a step, {t['tokens_s']:,} "
                        f"tokens/s, {t['model_tflops']} TFLOP/s = MFU {t['mfu']:.2f} of a measured "
                        f"{t['matmul_peak_tflops']} TFLOP/s bf16 matmul peak, {t['peak_mem_gb']} GB peak memory."]
    out += ["", *(f"- `bench/results/{name}`: `python {run['command']}`; {run['seconds']} s"
                  for name in names for run in load(name)["runs"])]
    return "\n".join(out)


LM_TOKENS_PER_ROW = {"lm1b": 128, "openwebtext": 1024}  # data/lm1b/prepare.py's row width; the OWT configs' block_size


def gpu_estimate() -> str:
    """README.md's time estimate for the LM configs: their tokens per run at the one GPU throughput we measured
    (bench/results/gpu_check_*.json, GPT-2-small shaped). An extrapolation, said as one."""
    sys.path.insert(0, ROOT)
    from engine import config_files
    names = sorted(f for f in os.listdir(RESULTS) if f.startswith("gpu_check_") and f.endswith(".json"))
    runs = [run for name in names for run in load(name)["runs"] if "lm_throughput" in run]
    if not runs:
        return "No GPU throughput measured yet (`bash bench/gpu_check.sh`)."
    run = runs[-1]
    tok_s = run["lm_throughput"]["tokens_s"]
    out = [f"Measured: one {run['device']} trains GPT-2-small-shaped steps ({run['lm_throughput']['shape']}; bf16, "
           f"compiled) at {tok_s:,} tokens/s, MFU {run['lm_throughput']['mfu']:.2f} (`bash bench/gpu_check.sh`, "
           f"{run['date']}). Not run, extrapolated at that rate (the LM configs are 12L/768 too):"]
    for data in LM_TOKENS_PER_ROW:
        cfg = {}
        cfg_path = os.path.join(ROOT, "configs", f"mdlm_{'owt' if data == 'openwebtext' else data}.py")
        for path in config_files(cfg_path):
            exec(open(path).read(), cfg)  # configs are plain literals
        tokens = cfg["max_iters"] * cfg["batch_size"] * LM_TOKENS_PER_ROW[data]
        days = tokens / tok_s / 86_400
        out.append(f"- `{os.path.relpath(cfg_path, ROOT)}` ({cfg['max_iters']:,} steps x {cfg['batch_size']} rows x "
                   f"{LM_TOKENS_PER_ROW[data]} tokens = {tokens / 1e9:.0f}B tokens): about {days:.1f} days on one "
                   f"{run['device']}, {24 * days / 8:.0f} hours on eight if they scale perfectly.")
    return "\n".join(out)


TABLES = {"star": star_table.render, "maze": maze, "shakespeare_char": shakespeare_char, "edit_stats": edit_stats,
          "train_throughput": train_throughput, "compare_xlm": compare_xlm, "train_ab": train_ab,
          "compare_xlm_sample": compare_xlm_sample, "speedrun": speedrun, "sample_throughput": sample_throughput, "gpu_check": gpu_check}
FRONT = {"star_compact": star_table.compact, "shipped": lambda: "\n".join(star_table.shipped()),
         "gpu_estimate": gpu_estimate}
DOCS = {"bench/README.md": TABLES, "README.md": FRONT}  # file -> the generated blocks it holds


def markers(name: str) -> tuple[str, str]:
    return f"<!-- table:{name} -->", f"<!-- /table:{name} -->"


def readme_block(text: str, name: str) -> str:
    begin, end = markers(name)
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n")


def main(argv: list[str] = sys.argv[1:]):
    texts = {}  # every file's new text first, so a missing marker writes nothing at all
    for rel, tables in DOCS.items():
        with open(os.path.join(ROOT, rel)) as f:
            text = f.read()
        for name, render in tables.items():
            table = render()
            print(f"{rel} {name}:\n{table}\n")
            begin, end = markers(name)
            if begin not in text or end not in text:
                sys.exit(f"{rel} lacks the markers {begin} ... {end}: put them where the table goes")
            i, j = text.index(begin) + len(begin), text.index(end)
            text = text[:i] + "\n" + table + "\n" + text[j:]
        texts[rel] = text
    if "--write" in argv:
        for rel, text in texts.items():
            with open(os.path.join(ROOT, rel), "w") as f:
                f.write(text)
            print(f"-> {rel}")


if __name__ == "__main__":
    main()
