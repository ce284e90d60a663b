//! The room service's own metrics (its gRPC calls are measured by
//! `common::telemetry::grpc`). docs/observability.md describes each one.

use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge};

use crate::Rooms;

pub const ROOMS: &str = "switchboard_rooms";
pub const MEMBERS: &str = "switchboard_room_members";
pub const LEASE_CLEANUPS: &str = "switchboard_lease_cleanups_total";
pub const CLEANED_MEMBERS: &str = "switchboard_lease_cleanup_members_total";

/// How often the room count is sampled from the store.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(15);
/// Rooms read per page while sampling.
const PAGE: u32 = 1000;

pub fn describe() {
    describe_gauge!(ROOMS, "Rooms in the cluster, sampled from the room store (every replica reports the same).");
    describe_gauge!(MEMBERS, "Room members in the cluster, sampled with the rooms.");
    describe_counter!(LEASE_CLEANUPS, "Nodes whose lease expired and whose members this process removed.");
    describe_counter!(CLEANED_MEMBERS, "Members removed from rooms after their gateway's lease expired.");
    counter!(LEASE_CLEANUPS).absolute(0);
    counter!(CLEANED_MEMBERS).absolute(0);
}

/// A dead node cleaned up, with the memberships removed.
pub fn lease_cleanup(members: usize) {
    counter!(LEASE_CLEANUPS).increment(1);
    counter!(CLEANED_MEMBERS).increment(members as u64);
}

/// Samples the number of rooms and members every `period`. The store is read page by
/// page (a Redis `SCAN`, never one blocking command), so a large cluster costs one
/// pass over its rooms per period, spread over many small commands.
pub async fn sample_rooms(rooms: Arc<Rooms>, period: Duration) {
    loop {
        match count(&rooms).await {
            Ok((count, members)) => {
                gauge!(ROOMS).set(count as f64);
                gauge!(MEMBERS).set(members as f64);
            }
            Err(error) => tracing::debug!(%error, "could not sample the rooms"),
        }
        tokio::time::sleep(period).await;
    }
}

async fn count(rooms: &Rooms) -> crate::error::Result<(u64, u64)> {
    let (mut count, mut members) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let page = rooms.list_rooms(PAGE, token.as_deref()).await?;
        count += page.rooms.len() as u64;
        members += page.rooms.iter().map(|room| u64::from(room.member_count)).sum::<u64>();
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return Ok((count, members)),
        }
    }
}
