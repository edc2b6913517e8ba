"""Sums over the queue's order: the work ahead of any job in O(log n), the basis of an ETA that does not walk the queue.

`SumTree` keeps values in key order and answers "the sum of the values below this key" in O(log n). It is a treap
(a binary search tree balanced by random priorities) whose nodes carry the sum of their subtree. sortedcontainers,
which keeps the order itself, has no sums, and no well-kept library offers a sorted container with them; a treap is
the smallest structure that does.

`Costs` keeps one tree per kind of job, because each kind has its own measured seconds per unit of cost and those
change after every batch: the seconds ahead of a key are the sum over kinds of each kind's cost ahead times its
current rate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Any


class _Node:
    __slots__ = ("key", "value", "priority", "left", "right", "total")

    def __init__(self, key: Any, value: float, priority: float) -> None:
        self.key = key
        self.value = value
        self.priority = priority
        self.left: _Node | None = None
        self.right: _Node | None = None
        self.total = value


def _total(node: _Node | None) -> float:
    return 0.0 if node is None else node.total


def _update(node: _Node) -> _Node:
    node.total = _total(node.left) + node.value + _total(node.right)
    return node


def _split(node: _Node | None, key: Any, inclusive: bool) -> tuple[_Node | None, _Node | None]:
    """(the keys below `key`, or up to it when `inclusive`; the rest)."""
    if node is None:
        return None, None
    if node.key < key or (inclusive and node.key == key):
        node.right, right = _split(node.right, key, inclusive)
        return _update(node), right
    left, node.left = _split(node.left, key, inclusive)
    return left, _update(node)


def _merge(left: _Node | None, right: _Node | None) -> _Node | None:
    """Every key of `left` is below every key of `right`."""
    if left is None:
        return right
    if right is None:
        return left
    if left.priority > right.priority:
        left.right = _merge(left.right, right)
        return _update(left)
    right.left = _merge(left, right.left)
    return _update(right)


class SumTree:
    """Values by unique, comparable keys, with the sum of those below any key."""

    def __init__(self, seed: int = 0) -> None:
        self._root: _Node | None = None
        self._random = random.Random(seed)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def total(self) -> float:
        return _total(self._root)

    def add(self, key: Any, value: float) -> None:
        left, right = _split(self._root, key, inclusive=False)
        self._root = _merge(_merge(left, _Node(key, value, self._random.random())), right)
        self._size += 1

    def remove(self, key: Any) -> None:
        """Raises KeyError for a key that is not there."""
        left, rest = _split(self._root, key, inclusive=False)
        middle, right = _split(rest, key, inclusive=True)
        if middle is None:
            self._root = _merge(left, right)
            raise KeyError(key)
        self._root = _merge(left, right)
        self._size -= 1

    def below(self, key: Any) -> float:
        """The sum of the values whose keys are below `key`."""
        node, found = self._root, 0.0
        while node is not None:
            if node.key < key:
                found += _total(node.left) + node.value
                node = node.right
            else:
                node = node.left
        return found


class Costs:
    """The cost of queued jobs by kind, in key order; seconds from each kind's rate."""

    def __init__(self) -> None:
        self._trees: dict[Hashable, SumTree] = {}

    def add(self, key: Any, kind: Hashable, cost: float) -> None:
        tree = self._trees.get(kind)
        if tree is None:
            tree = self._trees[kind] = SumTree()
        tree.add(key, cost)

    def remove(self, key: Any, kind: Hashable) -> None:
        tree = self._trees[kind]
        tree.remove(key)
        if not tree:
            del self._trees[kind]

    def seconds_below(self, key: Any, rate: Callable[[Hashable], float]) -> float:
        return sum(tree.below(key) * rate(kind) for kind, tree in self._trees.items())

    def seconds(self, rate: Callable[[Hashable], float]) -> float:
        return sum(tree.total * rate(kind) for kind, tree in self._trees.items())
