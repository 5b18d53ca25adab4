"""What the Library's dialogs ask for, as typed requests; `apply(db)` does it in the screen's worker with the
library's own operations (those `library tag/edit/rm/export/import` call) and says what it did."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    note: str  # what the user is told
    adapter_id: int | None = None  # the entry to put the cursor on
    removed: int | None = None  # an entry that is gone (and so no longer marked)


@dataclass(frozen=True)
class AdapterEdit:
    row: dict
    tags: list[str]
    trigger_words: list[str]
    preferred_weight: float
    notes: str

    def apply(self, db) -> Change:
        from loratui.library import adapters

        row = self.row
        adapters.tag(db, row["id"], [f"-{t}" for t in row["tags"] if t not in self.tags] + [f"+{t}" for t in self.tags])
        adapters.edit(db, row["id"], trigger_words=self.trigger_words, preferred_weight=self.preferred_weight,
                      notes=self.notes)
        return Change(f"saved #{row['id']} {row['name']}", row["id"])


@dataclass(frozen=True)
class Rename:
    row: dict
    name: str

    def apply(self, db) -> Change:
        from loratui.library import adapters

        adapters.edit(db, self.row["id"], name=self.name)
        return Change(f"renamed #{self.row['id']} {self.row['name']} to {self.name}", self.row["id"])


@dataclass(frozen=True)
class Removal:
    row: dict
    delete_files: bool

    def apply(self, db) -> Change:
        from loratui.library import adapters

        row = self.row
        _, deleted = adapters.remove(db, row["id"], delete_files=self.delete_files)
        kept = f"deleted {', '.join(deleted)}" if deleted else f"its files stay: {row['path']}"
        return Change(f"removed #{row['id']} {row['name']} from the library; {kept}", removed=row["id"])


@dataclass(frozen=True)
class Export:
    row: dict
    folder: str
    fmt: str
    overwrite: bool

    def apply(self, db) -> Change:
        from loratui.library.transfer import export_adapter

        row = self.row
        path = export_adapter(db, row["id"], self.fmt, self.folder, overwrite=self.overwrite)
        return Change(f"exported #{row['id']} {row['name']} ({self.fmt}) to {path}", row["id"])


@dataclass(frozen=True)
class Import:
    ref: str  # a file, a PEFT folder or a Hub id
    name: str | None
    link: bool

    def apply(self, db) -> Change:
        from loratui.library.transfer import import_adapter

        row, new = import_adapter(db, self.ref, name=self.name, mode="link" if self.link else None)
        entry = f"#{row['id']} {row['name']}"
        return Change(f"imported {self.ref} as {entry}" if new else f"{self.ref} is already in the library as {entry}",
                      row["id"])
