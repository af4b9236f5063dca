"""Seeded generators of the long-context tasks the bundled model is trained and
evaluated on (stdlib only, so it runs on the CPU box and on the GPU machine).

An example is a list of (text, is_answer) segments: the trainer tokenizes each
segment separately (every boundary sits at a pre-tokenizer boundary), puts loss
on the answer segments only, and the evaluator feeds the text of the first
segment (the prompt) and compares the greedy continuation with the first answer.

Formats
  lines    LongEval / LongChat line retrieval (header, `line adj-noun: REGISTER_CONTENT is <N>`
           lines, `Now the record is over. Tell me what is the <REGISTER_CONTENT> in line K?
           I need the number.`); answer ` The <REGISTER_CONTENT> in line K is <N>.`
  passkey  the landmark-attention passkey prompt (task description, filler, `The pass key
           is N. Remember it. N is the pass key.`, filler, `What is the pass key? The pass
           key is`); answer ` N.`
  kv       lost-in-the-middle style JSON key-value lookup with 8-hex-digit keys and values
  vartrack variable assignments (`b = a + 4;`) spread through Brown text; the question asks
           for one variable and the answer retrieves its chain back to a constant, then
           computes forward: ` c = b - 2, b = a + 4, a = 3, so b = 7, c = 5. The answer is 5.`
  copy     repeat a list of random words (an induction warm-up, training only)
"""
import random

TASKS = ("lines", "passkey", "kv", "vartrack", "copy")

LINES_HEADER = (
    "Below is a record of lines I want you to remember. Each line begins with 'line <line index>' "
    "and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. For each line "
    "index, memorize its corresponding <REGISTER_CONTENT>. At the end of the record, I will ask you "
    "to retrieve the corresponding <REGISTER_CONTENT> of a certain line index. Now the record start:\n\n"
)
PK_TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
           "them. I will quiz you about the important information there.")
PK_GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
PK_QUESTION = "What is the pass key? The pass key is"
KV_HEADER = "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n"
VT_HEADER = ("Keep track of the variables in the text below. Some lines assign a value to a variable, "
             "either a number or another variable plus or minus a number.\n\n")
COPY_HEADER = "Read the list of words below and repeat it exactly.\n\n"

# rough tokens per unit, only used to size training examples (the trainer measures and trims)
TOK_PER_LINE = 13.0
TOK_PER_KV = 14.0
CHARS_PER_TOK_TEXT = 4.0
CHARS_PER_TOK_PK = 4.3


def lines_prompt(keys, values, qkey):
    body = "".join(f"line {k}: REGISTER_CONTENT is <{v}>\n" for k, v in zip(keys, values))
    q = (f"\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {qkey}? "
         "I need the number.")
    return LINES_HEADER + body + q


def lines_answer(k, v):
    return f" The <REGISTER_CONTENT> in line {k} is <{v}>."


class TaskGen:
    def __init__(self, words, brown_docs, rng):
        self.adj = words["adj"]
        self.noun = words["noun"]
        self.docs = brown_docs
        self.rng = rng
        self.garbage = " ".join([PK_GARBAGE] * 400)

    # ---------------------------------------------------------------- helpers
    def _keys(self, n):
        r = self.rng
        seen = set()
        out = []
        while len(out) < n:
            k = f"{r.choice(self.adj)}-{r.choice(self.noun)}"
            if k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def _hex(self, n=8):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def _brown_span(self, nchars):
        """Whole sentences-ish: a span of a random Brown document starting at a paragraph."""
        r = self.rng
        out = []
        total = 0
        while total < nchars:
            d = r.choice(self.docs)
            paras = d.split("\n")
            i = r.randrange(len(paras))
            for p in paras[i:]:
                out.append(p)
                total += len(p) + 1
                if total >= nchars:
                    break
        s = "\n".join(out)
        return s[:nchars] if len(s) > nchars * 1.2 else s

    # ---------------------------------------------------------------- tasks
    def lines(self, n_lines, n_queries=1, vmax=50000):
        r = self.rng
        keys = self._keys(n_lines)
        vals = [r.randint(1, vmax) for _ in keys]
        q = r.randrange(n_lines)
        segs = [(lines_prompt(keys, vals, keys[q]), False), (lines_answer(keys[q], vals[q]), True)]
        for _ in range(n_queries - 1):
            q = r.randrange(n_lines)
            segs.append((f"\nTell me what is the <REGISTER_CONTENT> in line {keys[q]}? I need the number.",
                         False))
            segs.append((lines_answer(keys[q], vals[q]), True))
        return segs

    def passkey(self, n_filler_chars, brown_filler=False, vmax=50000):
        r = self.rng
        key = r.randint(1, vmax)
        pre = r.randint(0, n_filler_chars)
        if brown_filler:
            filler = self._brown_span(n_filler_chars + 10).replace("\n", " ")
        else:
            filler = self.garbage
            while len(filler) < n_filler_chars + 10:
                filler = filler + " " + filler
        info = f"The pass key is {key}. Remember it. {key} is the pass key."
        prompt = "\n".join([PK_TASK, filler[:pre], info, filler[pre:n_filler_chars], PK_QUESTION])
        return [(prompt, False), (f" {key}.", True)]

    def kv(self, n_pairs, n_queries=1):
        r = self.rng
        keys = list({self._hex(): None for _ in range(n_pairs)})
        vals = [self._hex() for _ in keys]
        body = "{" + ", ".join(f'"{k}": "{v}"' for k, v in zip(keys, vals)) + "}"
        q = r.randrange(len(keys))
        segs = [(KV_HEADER + body + f'\n\nKey: "{keys[q]}"\nCorresponding value:', False),
                (f' "{vals[q]}"', True)]
        for _ in range(n_queries - 1):
            q = r.randrange(len(keys))
            segs.append((f'\nKey: "{keys[q]}"\nCorresponding value:', False))
            segs.append((f' "{vals[q]}"', True))
        return segs

    def vartrack(self, n_filler_chars, n_queries=1):
        r = self.rng
        names = r.sample("abcdefghijklmnopqrstuvwxyz", r.randint(4, 14))
        chains = []
        i = 0
        while i < len(names):
            L = min(r.randint(1, 4), len(names) - i)
            chains.append(names[i:i + L])
            i += L
        stmts_by_chain = []
        values = {}
        defs = {}
        for ch in chains:
            v = r.randint(0, 30)
            values[ch[0]] = v
            defs[ch[0]] = None
            st = [f"{ch[0]} = {v};"]
            for prev, cur in zip(ch, ch[1:]):
                d = r.randint(1, 9)
                if values[prev] - d >= 0 and r.random() < 0.5:
                    op, nv = "-", values[prev] - d
                else:
                    op, nv = "+", values[prev] + d
                values[cur] = nv
                defs[cur] = (prev, op, d)
                st.append(f"{cur} = {prev} {op} {d};")
            stmts_by_chain.append(st)
        # interleave chains keeping each chain's order
        order = []
        ptr = [0] * len(stmts_by_chain)
        while True:
            live = [j for j in range(len(stmts_by_chain)) if ptr[j] < len(stmts_by_chain[j])]
            if not live:
                break
            j = r.choice(live)
            order.append(stmts_by_chain[j][ptr[j]])
            ptr[j] += 1
        n = len(order)
        filler = self._brown_span(n_filler_chars) if n_filler_chars > 0 else ""
        fp = filler.split("\n") if filler else []
        # cut filler into n+1 pieces at paragraph boundaries (or sentence ends)
        pieces = [[] for _ in range(n + 1)]
        for p in fp:
            pieces[r.randrange(n + 1)].append(p)
        body = []
        for k in range(n + 1):
            if pieces[k]:
                body.append("\n".join(pieces[k]))
            if k < n:
                body.append(order[k])
        text = VT_HEADER + "\n".join(body)
        segs = []
        asked = set()
        for qi in range(n_queries):
            # prefer the end of a long chain
            cands = [c[-1] for c in chains if len(c) > 1 and c[-1] not in asked] or \
                [c[-1] for c in chains if c[-1] not in asked] or list(names)
            x = r.choice(cands) if r.random() < 0.8 else r.choice(names)
            asked.add(x)
            chain = []
            y = x
            while defs[y] is not None:
                chain.append(y)
                y = defs[y][0]
            root = y
            parts = [f"{c} = {defs[c][0]} {defs[c][1]} {defs[c][2]}" for c in chain]
            parts.append(f"{root} = {values[root]}")
            ans = " " + ", ".join(parts)
            if chain:
                ans += ", so " + ", ".join(f"{c} = {values[c]}" for c in reversed(chain))
            ans += f". The answer is {values[x]}."
            q = f"\n\nQuestion: what is the value of {x}?\nAnswer:"
            segs.append(((text if qi == 0 else "") + q, False))
            segs.append((ans, True))
        return segs

    def copy(self, n_words):
        r = self.rng
        ws = [r.choice(self.noun if r.random() < 0.6 else self.adj) if r.random() < 0.8
              else str(r.randint(0, 9999)) for _ in range(n_words)]
        s = " ".join(ws)
        return [(COPY_HEADER + s + "\n\nRepeat:", False), (" " + s, True)]

    # ---------------------------------------------------------------- sizing
    def example(self, kind, approx_tokens, n_queries=1):
        r = self.rng
        t = max(120, approx_tokens)
        if kind == "lines":
            n = max(2, int((t - 110 - 25 * n_queries) / TOK_PER_LINE))
            return self.lines(n, n_queries)
        if kind == "passkey":
            brown = r.random() < 0.3
            cpt = CHARS_PER_TOK_TEXT if brown else CHARS_PER_TOK_PK
            return self.passkey(max(0, int((t - 70) * cpt)), brown_filler=brown,
                                vmax=50000 if r.random() < 0.8 else 999999)
        if kind == "kv":
            n = max(2, int((t - 40 - 15 * n_queries) / TOK_PER_KV))
            return self.kv(n, n_queries)
        if kind == "vartrack":
            return self.vartrack(max(0, int((t - 150) * CHARS_PER_TOK_TEXT)), n_queries)
        if kind == "copy":
            return self.copy(max(5, min(300, int(t / 2.6 / 2))))
        raise ValueError(kind)
