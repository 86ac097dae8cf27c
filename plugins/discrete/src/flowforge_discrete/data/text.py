"""Character- or byte-level text: CPython's bundled documentation topics, or the user's files.

`pydoc_data.topics` ships with every CPython (the text `help()` shows for keywords and
topics). Topics are assigned to splits whole (sorted by name, every tenth one held out by
default) so no test passage overlaps a training one; each split is cut into windows of
`seq_len` characters (or bytes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge_discrete.data.base import TokenDataset, Vocabulary, chunk, split_held_out


class TextParams(BaseModel):
    """Text data: where it comes from and how it is cut."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["pydoc_topics", "files"] = Field(
        "pydoc_topics", description="pydoc_topics (CPython's documentation) or files"
    )
    files: list[str] = Field(
        default_factory=list, description="source files: UTF-8 text files, one document each"
    )
    level: Literal["char", "byte"] = Field("char", description="char: Unicode characters; byte")
    seq_len: Annotated[int, Field(ge=2, description="tokens per sequence")] = 128
    test_fraction: Annotated[float, Field(gt=0, lt=1, description="held-out documents")] = 0.1
    val_fraction: Annotated[float, Field(gt=0, lt=1, description="validation documents")] = 0.05
    max_chars: Annotated[
        int | None, Field(ge=1, description="use only the first this many characters per split")
    ] = None


def pydoc_documents() -> list[tuple[str, str]]:
    """(topic, text) of `pydoc_data.topics`, sorted by topic."""
    from pydoc_data.topics import topics

    return sorted(topics.items())


def file_documents(files: list[str]) -> list[tuple[str, str]]:
    if not files:
        raise InvalidArgumentError(
            "data.params.files: give at least one text file for source files"
        )
    docs = []
    for name in files:
        path = Path(name)
        try:
            docs.append((name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidArgumentError(f"data.params.files: cannot read {name}: {err}") from None
    return docs


class Text(TokenDataset):
    """Text as token windows (see the module docstring). With `source: files` and fewer than
    three files, each file is split at paragraph breaks into documents."""

    def __init__(self, params: TextParams):
        self.params = params
        if params.source == "pydoc_topics":
            docs = pydoc_documents()
        else:
            docs = [
                (f"{n}#{i}", p)
                for n, text in file_documents(params.files)
                for i, p in enumerate(text.split("\n\n") if len(params.files) < 3 else [text])
            ]
        self.docs = [text for _, text in docs if text.strip()]
        if params.level == "byte":
            self._vocab = Vocabulary(list(range(256)), byte_level=True)
        else:
            self._vocab = Vocabulary(sorted(set("".join(self.docs))))

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def split_texts(self) -> dict[str, str]:
        """The concatenated documents of each split."""
        out = split_held_out(self.docs, self.params.test_fraction, self.params.val_fraction)
        cap = self.params.max_chars
        return {k: "\n\n".join(v)[:cap] for k, v in out.items()}

    def sequences(self) -> dict[str, Tensor]:
        out = {}
        for split, text in self.split_texts().items():
            windows = chunk(self._vocab.encode(text), self.params.seq_len)
            if windows.shape[0] == 0:
                raise InvalidArgumentError(
                    f"data: the {split} split has fewer than seq_len={self.params.seq_len} "
                    "tokens; lower seq_len or give more text"
                )
            out[split] = windows
        return out
