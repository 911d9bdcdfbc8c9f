//! Where a snapshot's bytes go, by name class and by part of a node: a diagnostic for the
//! update bench (`benches/update.rs` prints it), so that a layout change is judged by what it
//! saves on the zone it is meant for.

use std::fmt;

use super::{BLOCK, Node, Shard, ZoneSnapshot, zone_of};
use crate::answer::PreparedAnswer;
use crate::names::Name;

/// The bytes of a snapshot, by name class (`CLASSES`) and part; see [`ZoneSnapshot::footprint`].
#[derive(Clone, Debug, Default)]
pub struct Footprint {
    classes: [Parts; 3],
    /// Shards' tables of node offsets.
    table: usize,
    /// Shards' parent names (`Shard::parents`).
    parents: usize,
    /// Shards' buffers beyond their nodes: spare capacity, and dead nodes not yet compacted.
    slack: usize,
    dead: usize,
    /// Per shard its `Arc` and `Shard`, and the two-level root.
    fixed: usize,
}

/// One class of names.
#[derive(Clone, Copy, Debug, Default)]
struct Parts {
    nodes: usize,
    /// The name as stored: the first label with its length, and the parent reference.
    name: usize,
    /// Flags, type count and type table.
    types: usize,
    /// Prepared answers: their counts and bounds, and their records; links.
    header: usize,
    records: usize,
    links: usize,
}

/// Name classes: reverse-zone names (PTR owners and their ancestors), a name one label below
/// its group in a cluster zone that is not a `_<port>` or `_<proto>` name (per-pod A), and
/// the rest (Service names, SRV owners, namespaces, the apex).
const CLASSES: [&str; 3] = ["reverse (PTR)", "per-pod A", "Service and other"];

impl ZoneSnapshot {
    /// Where this snapshot's bytes go (a diagnostic; the total is [`ZoneSnapshot::heap_size`]
    /// less the served zones).
    #[doc(hidden)]
    pub fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            fixed: self.shards.len() * (BLOCK + 1) * size_of::<std::sync::Arc<Shard>>(),
            ..Footprint::default()
        };
        for shard in self.shards.iter().flat_map(|b| b.iter()) {
            f.fixed += 2 * size_of::<usize>() + size_of::<Shard>();
            f.table += shard.table.allocation_size();
            f.slack += shard.bytes.capacity() - shard.bytes.len();
            f.dead += shard.dead;
            f.parents += shard.parents.capacity();
            shard.for_each_named(|name, node| {
                let class = self.class_of(name);
                f.classes[class].add(node);
            });
        }
        f
    }

    fn class_of(&self, name: &[u8]) -> usize {
        let Some(zone) = zone_of(&self.zones, name) else {
            return 2;
        };
        let zone = &self.zones[zone];
        let labels = Name::from_wire(name).map_or(0, |n| n.labels().count());
        if zone.apex.as_wire().ends_with(b"\x04arpa\x00") {
            0
        } else if labels == zone.group_labels as usize + 1 && name.get(1) != Some(&b'_') {
            1
        } else {
            2
        }
    }
}

impl Parts {
    fn add(&mut self, node: Node<'_>) {
        let bytes = node.bytes();
        self.nodes += 1;
        self.name += node.name_len();
        let mut answers = 0;
        for (_, answer) in node.types() {
            answers += answer.len();
            if answer.starts_with(&super::LINK) {
                self.links += answer.len();
            } else {
                let records = PreparedAnswer::from_bytes(answer).stored_records_len();
                self.header += answer.len() - records;
                self.records += records;
            }
        }
        self.types += bytes.len() - node.name_len() - answers;
    }

    fn total(&self) -> usize {
        self.name + self.types + self.header + self.records + self.links
    }
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |b: usize| b as f64 / 1e6;
        writeln!(
            f,
            "{:<18} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6}",
            "class (MB)", "nodes", "total", "name", "types", "header", "records", "links"
        )?;
        for (label, p) in CLASSES.iter().zip(&self.classes) {
            writeln!(
                f,
                "{label:<18} {:>7} {:>7.2} {:>6.2} {:>6.2} {:>6.2} {:>7.2} {:>6.2}",
                p.nodes,
                mb(p.total()),
                mb(p.name),
                mb(p.types),
                mb(p.header),
                mb(p.records),
                mb(p.links),
            )?;
        }
        let nodes: usize = self.classes.iter().map(Parts::total).sum();
        write!(
            f,
            "nodes {:.2} MB, parent names {:.2} MB, tables {:.2} MB, buffer slack {:.2} MB, \
             dead {:.2} MB, shards and root {:.2} MB",
            mb(nodes),
            mb(self.parents),
            mb(self.table),
            mb(self.slack),
            mb(self.dead),
            mb(self.fixed),
        )
    }
}
