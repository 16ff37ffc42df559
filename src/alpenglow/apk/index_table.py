"""One repository index as tables: what the pool asks about a name, answered without a
record for every package.

A solve looks at a few hundred of an index's thousands of packages, and what it asks is
per name: who provides it, which names depend on it, which have it in their install_if.
:class:`IndexTable` answers those questions from integer tables worked out once from the
index alone (:meth:`IndexTable.build`), and decodes a package's record only when it is
asked for one. The index cache (:mod:`alpenglow.apk.index_cache`) stores a table as a few
byte strings (:meth:`IndexTable.dump`), so loading a cached index makes almost no objects.

What the tables hold, per index-local name number ``j`` (names in the order apk creates
them while reading the index):

* providers: pairs (package number, 0 for the package's own name or ``k + 1`` for its
  ``k``-th provides), in index order;
* reverse dependencies and reverse install_if: the numbers of the names of the packages
  (own name and provides) that depend on ``j``, or have it in their install_if, sorted in
  apk's name-table order for this index read alone (bucket, then the most recently created
  name first). A pool in which some of these names were created earlier re-sorts them
  (:meth:`alpenglow.apk.pool.Pool.rdepends`).

Only packages that are pool entries count: a package without an identity is not one, and
a second package with an identity seen before in the index is the first one again (apk
merges them). The tables are made from the packages as apk reads them
(:func:`alpenglow.apk.pool.normalize_index_package`); :meth:`IndexTable.package` returns
the record as listed, and the pool normalises the few that need it.
"""

from __future__ import annotations

import marshal
import sys
from array import array
from collections.abc import Callable, Sequence
from zlib import crc32

from alpenglow._record import fields_of
from alpenglow._typing import TYPE_CHECKING
from alpenglow.apk.dependency import Dependency
from alpenglow.apk.index import Package
from alpenglow.apk.solver import identity_key
from alpenglow.apk.version import Op

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["PLAIN", "SKIPPED", "IndexTable", "decode_columns", "encode_columns"]


def __dir__() -> list[str]:
    return __all__


PLAIN = 1
"""Package flag: apk reads the package exactly as listed (nothing to normalise or flag)."""
SKIPPED = 2
"""Package flag: not a pool entry of its own (no identity, or one listed earlier)."""

_IDENTITY = 20  # bytes of an identity key; a package without one stores zeros
_FIELDS: tuple[str, ...] = fields_of(Package)
_DEP_FIELDS = frozenset({"depends", "provides", "install_if", "replaces"})
_DEP_AT = tuple(i for i, f in enumerate(_FIELDS) if f in _DEP_FIELDS)
_DEP_SLOTS: tuple[str, ...] = fields_of(Dependency)
_LAYOUT = (sys.byteorder, array("I").itemsize, _FIELDS)


class _DependencyShell:
    """A mutable twin of :class:`Dependency` (same slots), re-labelled once filled in: a
    frozen dataclass sets each field through ``object.__setattr__``, which is slow."""

    __slots__ = _DEP_SLOTS

    def __init__(
        self, name: str, op: Op, version: str | None, conflict: bool, tag: str | None
    ) -> None:
        self.name = name
        self.op = op
        self.version = version
        self.conflict = conflict
        self.tag = tag
        self.__class__ = Dependency  # type: ignore[assignment]


class _PackageShell:
    """A mutable twin of :class:`Package`, like :class:`_DependencyShell` (its arguments
    are the fields in slot order)."""

    __slots__ = _FIELDS

    def __init__(
        self,
        name: object,
        version: object,
        checksum: object,
        arch: object,
        size: object,
        installed_size: object,
        description: object,
        url: object,
        license: object,
        origin: object,
        maintainer: object,
        build_time: object,
        commit: object,
        provider_priority: object,
        depends: object,
        provides: object,
        install_if: object,
        replaces: object,
        replaces_priority: object,
        tags: object,
        repository_tag: object,
        flags: object,
        uninstallable: object,
        extra: object,
    ) -> None:
        self.name = name
        self.version = version
        self.checksum = checksum
        self.arch = arch
        self.size = size
        self.installed_size = installed_size
        self.description = description
        self.url = url
        self.license = license
        self.origin = origin
        self.maintainer = maintainer
        self.build_time = build_time
        self.commit = commit
        self.provider_priority = provider_priority
        self.depends = depends
        self.provides = provides
        self.install_if = install_if
        self.replaces = replaces
        self.replaces_priority = replaces_priority
        self.tags = tags
        self.repository_tag = repository_tag
        self.flags = flags
        self.uninstallable = uninstallable
        self.extra = extra
        self.__class__ = Package  # type: ignore[assignment]


_OPS: dict[int, Op] = {}


def _op(value: int) -> Op:
    op = _OPS.get(value)
    if op is None:
        op = _OPS[value] = Op(value)
    return op


def _encode(pkg: Package, atoms: dict[Dependency, int]) -> bytes:
    """A package's fields, its dependencies as numbers in ``atoms`` (added as met)."""
    values: list[Any] = [getattr(pkg, f) for f in _FIELDS]
    for at in _DEP_AT:
        deps: tuple[Dependency, ...] = values[at]
        values[at] = tuple(atoms.setdefault(d, len(atoms)) for d in deps)
    return marshal.dumps(tuple(values))


def _dep_values(d: Dependency) -> tuple[str, int, str | None, bool, str | None]:
    """A dependency atom as plain values, for ``marshal``."""
    return (d.name, int(d.op), d.version, d.conflict, d.tag)


def _dep_from(values: Sequence[Any]) -> Dependency:
    """:func:`_dep_values` read back."""
    name, op, version, conflict, tag = values
    shell: Any = _DependencyShell(name, _op(op), version, conflict, tag)
    return shell  # type: ignore[no-any-return]


class _Atoms:
    """The index's distinct dependency atoms, each made into a :class:`Dependency` once
    (thousands of packages share ``so:libc.musl-x86_64.so.1``), and only when a decoded
    package has it: each is encoded on its own, like the packages."""

    __slots__ = ("data", "made", "offsets")

    def __init__(self, blob: bytes) -> None:
        offsets, self.data = marshal.loads(blob)
        self.offsets = memoryview(offsets).cast("I")
        if self.offsets[-1] != len(self.data):
            raise ValueError("dependency atoms do not fit together")
        self.made: list[Dependency | None] = [None] * (len(self.offsets) - 1)

    @staticmethod
    def encode(atoms: Sequence[Dependency]) -> bytes:
        blobs = [marshal.dumps(_dep_values(d)) for d in atoms]
        offsets = [0]
        for blob in blobs:
            offsets.append(offsets[-1] + len(blob))
        return marshal.dumps((_ints(offsets), b"".join(blobs)))

    def get(self, i: int) -> Dependency:
        dep = self.made[i]
        if dep is None:
            dep = self.made[i] = _dep_from(
                marshal.loads(self.data[self.offsets[i] : self.offsets[i + 1]])
            )
        return dep


def _decode(blob: bytes | memoryview, atoms: _Atoms) -> Package:
    values = list(marshal.loads(blob))
    made = atoms.made
    get = atoms.get
    for at in _DEP_AT:
        numbers = values[at]
        if numbers:
            values[at] = tuple([made[i] or get(i) for i in numbers])
    return _PackageShell(*values)  # type: ignore[return-value]


def encode_columns(packages: Sequence[Package]) -> bytes:
    """Every package at once, in columns (``marshal`` of plain values, equal values and
    dependency atoms written once): the fastest form to read *all* of an index back."""
    atoms: dict[Dependency, int] = {}
    lists: dict[tuple[int, ...], int] = {}
    columns: list[list[object]] = []

    def shared(values: list[object]) -> list[object]:
        """Equal values of one column as one object: marshal then writes each once and
        reads back references. (Within a column the types agree, so ``True == 1`` cannot
        merge a bool into an int.)"""
        seen: dict[object, object] = {}
        one = seen.setdefault
        return [one(v, v) for v in values]

    for name in _FIELDS:
        values = [getattr(p, name) for p in packages]
        if name not in _DEP_FIELDS:
            values = shared(values)
        else:
            values = [
                lists.setdefault(tuple(atoms.setdefault(d, len(atoms)) for d in deps), len(lists))
                for deps in values
            ]
        columns.append(values)
    atom_columns = [shared([getattr(d, slot) for d in atoms]) for slot in _DEP_SLOTS]
    atom_columns[_DEP_SLOTS.index("op")] = [int(d.op) for d in atoms]
    return marshal.dumps((_LAYOUT, tuple(atom_columns), tuple(lists), tuple(columns)))


def decode_columns(blob: bytes | memoryview) -> tuple[Package, ...]:
    """:func:`encode_columns`' packages. Raises ValueError (or another exception) when the
    bytes are not such columns."""
    layout, atom_columns, lists, columns = marshal.loads(blob)
    if layout != _LAYOUT or len(atom_columns) != len(_DEP_SLOTS) or len(columns) != len(_FIELDS):
        raise ValueError("not package columns of this layout")
    op_at = _DEP_SLOTS.index("op")
    atom_columns = list(atom_columns)
    atom_columns[op_at] = map(_op, atom_columns[op_at])
    atoms = list(map(_DependencyShell, *atom_columns))
    atom = atoms.__getitem__
    dep_lists = [tuple(map(atom, ix)) if ix else () for ix in lists]
    dep_list = dep_lists.__getitem__
    columns = [
        list(map(dep_list, column)) if name in _DEP_FIELDS else column
        for name, column in zip(_FIELDS, columns, strict=True)
    ]
    return tuple(map(_PackageShell, *columns))  # type: ignore[arg-type]


def _plain_values(pkg: Package) -> tuple[Any, ...]:
    """A package's fields as plain values (dependencies as tuples), for ``marshal``."""
    values: list[Any] = [getattr(pkg, f) for f in _FIELDS]
    for at in _DEP_AT:
        values[at] = tuple(map(_dep_values, values[at]))
    return tuple(values)


def _from_plain_values(values: Sequence[Any]) -> Package:
    fields = list(values)
    for at in _DEP_AT:
        fields[at] = tuple(map(_dep_from, fields[at]))
    return _PackageShell(*fields)  # type: ignore[return-value]


def _ints(values: Sequence[int] | array[int]) -> bytes:
    return array("I", values).tobytes()


def _name_slots(names: Sequence[str]) -> bytes:
    """An open-addressing hash table of ``names`` (slot: local number + 1, 0 for empty),
    keyed by the CRC-32 of the name: stored with the table, so that looking a name up needs
    no dictionary of every name (building one hashes thousands of strings every run)."""
    size = 1
    while size < 2 * len(names):
        size <<= 1
    slots = array("I", bytes(4 * size))
    mask = size - 1
    for j, name in enumerate(names):
        at = crc32(name.encode("utf-8", "surrogateescape")) & mask
        while slots[at]:
            at = (at + 1) & mask
        slots[at] = j + 1
    return slots.tobytes()


def _flatten(lists: Sequence[Sequence[int]]) -> tuple[bytes, bytes]:
    offsets = [0]
    data: array[int] = array("I")
    for lst in lists:
        data.extend(lst)
        offsets.append(len(data))
    return _ints(offsets), data.tobytes()


class IndexTable:
    """The packages of one index and, per name, its providers and reverse lists."""

    __slots__ = (
        "_atom_blob",
        "_atoms",
        "_buckets",
        "_bulk",
        "_decoded",
        "_flags",
        "_identities",
        "_identity_index",
        "_iif",
        "_made",
        "_normalized",
        "_offsets",
        "_prov",
        "_prov_at",
        "_rdep",
        "_rdep_at",
        "_records",
        "_riif",
        "_riif_at",
        "_slots",
        "names",
    )

    names: tuple[str, ...]
    """Every name the index mentions, in the order apk creates them while reading it."""

    def __init__(
        self,
        names: tuple[str, ...],
        buckets: bytes,
        flags: bytes,
        identities: bytes,
        records: Sequence[Package] | tuple[bytes, bytes, bytes],
        tables: tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes],
    ) -> None:
        """Internal: use :meth:`build` or :meth:`load`."""
        count = len(flags)
        self.names = names
        self._buckets = memoryview(buckets).cast("I")
        self._flags = flags
        self._identities = identities
        self._identity_index: dict[bytes, int] | None = None
        self._atoms: _Atoms | None = None
        self._atom_blob = b""
        self._bulk: Callable[[], Sequence[Package] | None] | None = None
        self._decoded = 0
        self._normalized: dict[int, tuple[Package, bool, int]] | tuple[Any, ...] = {}
        if isinstance(records, tuple) and len(records) == 3 and isinstance(records[1], bytes):
            offsets, blob, atoms = records
            self._offsets = memoryview(offsets).cast("I")
            self._records: bytes | None = blob
            self._atom_blob = atoms
            self._made: list[Package | None] = [None] * count
        else:
            self._offsets = memoryview(b"").cast("I")
            self._records = None
            self._made = list(records)
        prov_at, prov, rdep_at, rdep, riif_at, riif, iif, slots = tables
        self._prov_at = memoryview(prov_at).cast("I")
        self._prov = memoryview(prov).cast("I")
        self._rdep_at = memoryview(rdep_at).cast("I")
        self._rdep = memoryview(rdep).cast("I")
        self._riif_at = memoryview(riif_at).cast("I")
        self._riif = memoryview(riif).cast("I")
        self._iif = memoryview(iif).cast("I")
        self._slots = memoryview(slots).cast("I")
        n = len(names)
        sizes_ok = (
            len(self._slots) >= n
            and len(self._slots) & (len(self._slots) - 1) == 0
            and len(self._buckets) == n
            and len(identities) == _IDENTITY * count
            and len(self._made) == count
            and all(len(at) == n + 1 for at in (self._prov_at, self._rdep_at, self._riif_at))
            and self._prov_at[n] == len(self._prov)
            and self._rdep_at[n] == len(self._rdep)
            and self._riif_at[n] == len(self._riif)
            and (self._records is None or len(self._offsets) == count + 1)
            and (self._records is None or self._offsets[count] == len(self._records))
        )
        if not sizes_ok:
            raise ValueError("index table parts do not fit together")

    # -- making ----------------------------------------------------------------------------

    @classmethod
    def build(cls, packages: Sequence[Package], names: Sequence[str]) -> IndexTable:
        """The tables of ``packages`` (parsed from one index); ``names`` are the index's
        names in apk's creation order (every name any package mentions)."""
        from alpenglow.apk.pool import Compat, bucket_of, normalize_index_package

        index = {n: j for j, n in enumerate(names)}
        buckets = [bucket_of(n) for n in names]
        flags = bytearray(len(packages))
        identities = bytearray()
        seen: set[bytes] = set()
        prov: list[list[int]] = [[] for _ in names]
        rdep: list[set[int]] = [set() for _ in names]
        riif: list[set[int]] = [set() for _ in names]
        fresh = Compat()
        normalized: dict[int, tuple[Package, bool, int]] = {}
        for i, raw in enumerate(packages):
            ident = identity_key(raw.checksum)
            identities += ident or bytes(_IDENTITY)
            compat = Compat()
            pkg, uninstallable = normalize_index_package(raw, compat)
            if pkg is raw and not uninstallable and compat == fresh:
                flags[i] |= PLAIN
            else:
                normalized[i] = (pkg, uninstallable, compat.bits())
            if not ident or ident in seen:
                flags[i] |= SKIPPED
                continue
            seen.add(ident)
            own = [index[pkg.name]]
            prov[own[0]] += (i, 0)
            for k, d in enumerate(pkg.provides, 1):
                at = index[d.name]
                own.append(at)
                prov[at] += (i, k)
            for d in pkg.depends:
                rdep[index[d.name]].update(own)
            for d in pkg.install_if:
                riif[index[d.name]].update(own)

        def local_order(found: set[int]) -> list[int]:
            return sorted(found, key=lambda j: (buckets[j] << 32) - j)

        tables = (
            *_flatten(prov),
            *_flatten([local_order(s) for s in rdep]),
            *_flatten([local_order(s) for s in riif]),
            _ints([j for j, s in enumerate(riif) if s]),
            _name_slots(names),
        )
        table = cls(
            tuple(names),
            _ints(buckets),
            bytes(flags),
            bytes(identities),
            tuple(packages),
            tables,
        )
        table._normalized = normalized
        return table

    def dump(self) -> tuple[Any, ...]:
        """The table as plain values for ``marshal`` (see :meth:`load`)."""
        if self._records is None:
            atoms: dict[Dependency, int] = {}
            blobs = [_encode(self.package(i), atoms) for i in range(len(self._flags))]
            offsets = [0]
            for blob in blobs:
                offsets.append(offsets[-1] + len(blob))
            records = (_ints(offsets), b"".join(blobs), _Atoms.encode(list(atoms)))
        else:
            records = (self._offsets.tobytes(), self._records, self._atom_blob)
        tables = tuple(
            view.tobytes()
            for view in (
                self._prov_at,
                self._prov,
                self._rdep_at,
                self._rdep,
                self._riif_at,
                self._riif,
                self._iif,
                self._slots,
            )
        )
        normalized = tuple(
            (i, _plain_values(pkg), uninstallable, bits)
            for i, (pkg, uninstallable, bits) in self.normalized().items()
        )
        return (
            _LAYOUT,
            self.names,
            self._buckets.tobytes(),
            self._flags,
            self._identities,
            records,
            tables,
            normalized,
        )

    @classmethod
    def load(cls, dumped: object) -> IndexTable:
        """A table from :meth:`dump`'s values. Raises ValueError (or another exception)
        when they are not such values."""
        if not isinstance(dumped, tuple) or len(dumped) != 8 or dumped[0] != _LAYOUT:
            raise ValueError("not an index table of this layout")
        _, names, buckets, flags, identities, records, tables, normalized = dumped
        if not isinstance(names, tuple) or not set(map(type, names)) <= {str}:
            raise ValueError("bad names")
        if not isinstance(records, tuple) or len(records) != 3:
            raise ValueError("bad records")
        if not all(isinstance(b, bytes) for b in (buckets, flags, identities, *records)):
            raise ValueError("bad parts")
        if not isinstance(tables, tuple) or len(tables) != 8:
            raise ValueError("bad tables")
        if not all(isinstance(t, bytes) for t in tables):
            raise ValueError("bad tables")
        plain = flags.count(PLAIN) + flags.count(PLAIN | SKIPPED)
        if not isinstance(normalized, tuple) or len(normalized) != len(flags) - plain:
            raise ValueError("normalized packages do not fit the flags")
        table = cls(names, buckets, flags, identities, records, tables)
        table._normalized = normalized
        return table

    # -- packages --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._flags)

    def set_bulk(self, bulk: Callable[[], Sequence[Package] | None]) -> None:
        """Give a way to read every package at once (the index cache keeps them in columns
        too): used once a solve has asked for many packages one by one (a discovery walk
        with nothing known reaches most of an index), and by :meth:`packages`. It returns
        None when it cannot; packages are then decoded one by one."""
        self._bulk = bulk

    def _fill(self) -> None:
        bulk, self._bulk = self._bulk, None
        every = bulk() if bulk is not None else None
        if every is None or len(every) != len(self._made):
            return
        made = self._made
        for i, pkg in enumerate(every):
            if made[i] is None:  # one decoded already stays the object handed out
                made[i] = pkg

    def package(self, i: int) -> Package:
        """Package ``i`` as the index lists it (decoded on first use)."""
        pkg = self._made[i]
        if pkg is None:
            self._decoded += 1
            if self._bulk is not None and self._decoded > max(64, len(self._made) >> 3):
                self._fill()
                found = self._made[i]
                if found is not None:
                    return found
            records = self._records
            assert records is not None
            atoms = self._atoms
            if atoms is None:
                atoms = self._atoms = _Atoms(self._atom_blob)
            pkg = self._made[i] = _decode(records[self._offsets[i] : self._offsets[i + 1]], atoms)
        return pkg

    def packages(self) -> tuple[Package, ...]:
        """Every package, in index order."""
        if self._bulk is not None:
            self._fill()
        return tuple(map(self.package, range(len(self._flags))))

    def flags(self, i: int) -> int:
        """:data:`PLAIN` and :data:`SKIPPED` bits of package ``i``."""
        return self._flags[i]

    def normalized(self) -> dict[int, tuple[Package, bool, int]]:
        """The packages apk does not read exactly as listed, as it holds them: number ->
        (package, uninstallable, :meth:`~alpenglow.apk.pool.Compat.bits` it sets)."""
        found = self._normalized
        if isinstance(found, tuple):
            found = self._normalized = {
                i: (_from_plain_values(values), uninstallable, bits)
                for i, values, uninstallable, bits in found
            }
        return found

    def identity(self, i: int) -> bytes:
        """Package ``i``'s identity key (:func:`~alpenglow.apk.solver.identity_key`)."""
        return self._identities[_IDENTITY * i : _IDENTITY * (i + 1)]

    def identities(self) -> Mapping[bytes, int]:
        """Identity key -> number of the package that is the pool entry for it (made on
        first use: only pools that merge sources, or add packages late, ask)."""
        out = self._identity_index
        if out is None:
            out = self._identity_index = {}
            ids = self._identities
            for i, flag in enumerate(self._flags):
                if not flag & SKIPPED:
                    out[ids[_IDENTITY * i : _IDENTITY * (i + 1)]] = i
        return out

    # -- names -----------------------------------------------------------------------------

    def index_of(self, name: str) -> int | None:
        """The local number of ``name``, None if the index does not mention it."""
        slots = self._slots
        mask = len(slots) - 1
        at = crc32(name.encode("utf-8", "surrogateescape")) & mask
        names = self.names
        while True:
            j = slots[at]
            if not j:
                return None
            if names[j - 1] == name:
                return j - 1
            at = (at + 1) & mask

    def bucket(self, j: int) -> int:
        """Name ``j``'s bucket in apk's name hash table."""
        return self._buckets[j]

    def providers_of(self, j: int) -> memoryview:
        """Flat pairs (package number, 0 or provides position + 1) providing name ``j``."""
        return self._prov[self._prov_at[j] : self._prov_at[j + 1]]

    def has_providers(self, j: int) -> bool:
        return self._prov_at[j + 1] > self._prov_at[j]

    def rdepends_of(self, j: int) -> memoryview:
        """Local numbers of the names whose packages depend on name ``j``, in order."""
        return self._rdep[self._rdep_at[j] : self._rdep_at[j + 1]]

    def rinstall_if_of(self, j: int) -> memoryview:
        """Like :meth:`rdepends_of`, for install_if."""
        return self._riif[self._riif_at[j] : self._riif_at[j + 1]]

    def install_if_names(self) -> list[str]:
        """The names some package has in its install_if."""
        names = self.names
        return [names[j] for j in self._iif]
