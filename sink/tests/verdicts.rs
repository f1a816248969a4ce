//! Verdicts from several locations, driven through the sink's batch pipeline against a real
//! PostgreSQL with hand-made results (deterministic): a regional fault, a global outage,
//! flapping inside the thresholds, silent locations (in batches and by the sweep),
//! redelivered and late results, an overloaded agent, and the site catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sitewatch_checks::catalog::{Quorum, SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, Batch, CatalogEntry, Row, WriteStats};
use sitewatch_sink::verdicts;
use sitewatch_tests::fixtures::result;
use support::TestDb;
use tokio_postgres::Client;

/// Seconds between a location's checks in these tests.
const INTERVAL: i64 = 10;
const EU: &str = "eu";
const US: &str = "us";
const AP: &str = "ap";

/// A migrated database and a clock an hour in the past to write results at.
struct Sim {
    _db: TestDb,
    client: Client,
    start: DateTime<Utc>,
    offset: i64,
}

impl Sim {
    async fn new() -> Sim {
        let db = TestDb::create().await;
        let mut client = db.client().await;
        migrations::migrate(&mut client).await.unwrap();
        Sim {
            _db: db,
            client,
            start: (Utc::now() - Duration::hours(1)).trunc_subsecs(3),
            offset: 0,
        }
    }

    /// `location`'s check of `site` in round `round` (each location a few seconds apart).
    fn check(&mut self, site: &str, location: &str, round: i64, outcome: Outcome) -> Row {
        let spread = match location {
            EU => 0,
            US => 3,
            _ => 6,
        };
        let mut r = result(site);
        r.agent = format!("agent-{location}");
        r.location = Some(location.to_string());
        r.started_at = self.start + Duration::seconds(round * INTERVAL + spread);
        r.outcome = outcome;
        if outcome == Outcome::Down {
            r.error = Some(CheckError {
                kind: ErrorKind::Connect,
                message: format!("refused from {location}"),
            });
        }
        self.offset += 1;
        Row::new(0, self.offset, r)
    }

    /// One round over `locations` with their outcomes.
    fn round(&mut self, site: &str, round: i64, outcomes: &[(&str, Outcome)]) -> Vec<Row> {
        outcomes
            .iter()
            .map(|(location, outcome)| self.check(site, location, round, *outcome))
            .collect()
    }

    async fn write(&mut self, rows: Vec<Row>) -> WriteStats {
        self.write_batch(Batch {
            rows,
            ..Batch::default()
        })
        .await
    }

    /// Defines `site` in the catalog: checked every [`INTERVAL`], default thresholds.
    async fn define(&mut self, site: &str) {
        let entry = definition(site, EU, self.start, 2, Quorum::Majority);
        self.write_batch(Batch {
            catalog: vec![entry],
            ..Batch::default()
        })
        .await;
    }

    async fn write_batch(&mut self, batch: Batch) -> WriteStats {
        write_batch(&mut self.client, &batch).await.unwrap()
    }

    /// (kind, previous, new) of a site's events since version 4, in order.
    async fn events(&self, site: &str) -> Vec<(String, Option<String>, String)> {
        self.client
            .query(
                "SELECT kind, previous_outcome, new_outcome FROM site_events
                 WHERE site = $1 ORDER BY at, id",
                &[&site],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn verdict(&self, site: &str) -> String {
        self.verdict_column(site, "verdict").await
    }

    async fn reason(&self, site: &str) -> String {
        self.verdict_column(site, "reason").await
    }

    /// A text column of `site`'s row in `site_verdicts`.
    async fn verdict_column(&self, site: &str, column: &str) -> String {
        self.client
            .query_one(
                &format!(
                    "SELECT v.{column} FROM site_verdicts v JOIN sites s ON s.id = v.site_id
                     WHERE s.name = $1"
                ),
                &[&site],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn state(&self, site: &str, location: &str) -> (String, bool) {
        let r = self
            .client
            .query_one(
                "SELECT ls.state, ls.silent_since IS NOT NULL FROM location_states ls
                 JOIN sites s ON s.id = ls.site_id JOIN locations l ON l.id = ls.location_id
                 WHERE s.name = $1 AND l.name = $2",
                &[&site, &location],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    }

    /// (started_at, resolved_at, locations, first error) of a site's incidents.
    async fn incidents(
        &self,
        site: &str,
    ) -> Vec<(
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Vec<String>,
        Option<String>,
    )> {
        self.client
            .query(
                "SELECT i.started_at, i.resolved_at, i.locations, i.first_error
                 FROM incidents i JOIN sites s ON s.id = i.site_id
                 WHERE s.name = $1 ORDER BY i.id",
                &[&site],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    fn at(&self, round: i64, location: &str) -> DateTime<Utc> {
        let spread = [(EU, 0), (US, 3), (AP, 6)]
            .iter()
            .find(|(l, _)| *l == location)
            .map_or(0, |(_, s)| *s);
        self.start + Duration::seconds(round * INTERVAL + spread)
    }
}

/// Events, incidents, location states and verdicts, as text.
async fn snapshot(client: &Client) -> (i64, i64, String, String) {
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM site_events), (SELECT count(*) FROM incidents),
                    (SELECT string_agg(row_to_json(l)::text, ',' ORDER BY location_id)
                     FROM location_states l),
                    (SELECT row_to_json(v)::text FROM site_verdicts v)",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

fn event(kind: &str, previous: Option<&str>, new: &str) -> (String, Option<String>, String) {
    (kind.into(), previous.map(str::to_string), new.into())
}

use Outcome::{Down, Up};

#[tokio::test]
async fn a_regional_fault_in_one_of_three_locations_is_degraded_with_no_down_event() {
    let mut sim = Sim::new().await;
    for round in 0..20 {
        let rows = sim.round("shop", round, &[(EU, Up), (US, Up), (AP, Down)]);
        sim.write(rows).await;
    }
    assert_eq!(sim.verdict("shop").await, "degraded");
    assert_eq!(sim.state("shop", AP).await, ("failing".into(), false));
    assert_eq!(sim.state("shop", EU).await, ("passing".into(), false));
    // Its first verdict (up) is no event; ap's second down check makes it degraded.
    assert_eq!(
        sim.events("shop").await,
        [event("verdict", Some("up"), "degraded")]
    );
    assert!(sim.incidents("shop").await.is_empty());
    let reason: String = sim
        .client
        .query_one("SELECT reason FROM site_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        reason,
        "1 of 3 locations failing (quorum 2): ap (connect: refused from ap)"
    );
}

#[tokio::test]
async fn a_global_outage_is_one_down_event_and_one_incident_closed_on_recovery() {
    let mut sim = Sim::new().await;
    let all = |o| [(EU, o), (US, o), (AP, o)];
    // Batches of any size: two rounds up, five down, three up.
    let mut rows = Vec::new();
    for (round, outcome) in (0..10).map(|r| (r, if (2..7).contains(&r) { Down } else { Up })) {
        rows.extend(sim.round("shop", round, &all(outcome)));
    }
    for batch in rows.chunks(4) {
        sim.write(batch.to_vec()).await;
    }
    let events = sim.events("shop").await;
    let downs = events.iter().filter(|e| e.2 == "down").count();
    assert_eq!(downs, 1, "{events:?}");
    // On the way there and back the locations confirm one by one: degraded in between.
    assert_eq!(
        events,
        [
            event("verdict", Some("up"), "degraded"),
            event("verdict", Some("degraded"), "down"),
            event("verdict", Some("down"), "degraded"),
            event("verdict", Some("degraded"), "up"),
        ]
    );
    assert_eq!(sim.verdict("shop").await, "up");
    let incidents = sim.incidents("shop").await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let (started, resolved, locations, error) = &incidents[0];
    // The quorum (2 of 3) began failing with us's first down check.
    assert_eq!(*started, sim.at(2, US));
    // Resolved when the verdict left down: eu's second good check was the second passing.
    assert_eq!(*resolved, Some(sim.at(7, US)));
    assert_eq!(locations, &["ap", "eu", "us"]);
    assert_eq!(error.as_deref(), Some("refused from us"));
    let events_with_incident: i64 = sim
        .client
        .query_one(
            "SELECT count(*) FROM site_events e JOIN incidents i ON i.id = e.incident_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events_with_incident, 2, "the down and the recovery name it");
}

#[tokio::test]
async fn flapping_inside_the_thresholds_raises_no_events() {
    let mut sim = Sim::new().await;
    for round in 0..30 {
        let o = if round % 2 == 0 { Up } else { Down };
        let rows = sim.round("flappy", round, &[(EU, o), (US, o), (AP, o)]);
        sim.write(rows).await;
    }
    assert_eq!(sim.events("flappy").await, []);
    assert_eq!(sim.verdict("flappy").await, "up");
    assert!(sim.incidents("flappy").await.is_empty());
}

#[tokio::test]
async fn a_silent_location_leaves_the_vote_and_the_sweep_judges_sites_with_no_results() {
    let mut sim = Sim::new().await;
    sim.define("shop").await;
    // ap has a regional fault, then its agent dies after round 4; eu and us go on.
    for round in 0..12 {
        let mut outcomes = vec![(EU, Up), (US, Up)];
        if round < 5 {
            outcomes.push((AP, Down));
        }
        let rows = sim.round("shop", round, &outcomes);
        sim.write(rows).await;
    }
    // Silent for 3 intervals: ap leaves the vote, and the fault it saw with it.
    assert_eq!(sim.state("shop", AP).await, ("failing".into(), true));
    assert_eq!(sim.verdict("shop").await, "up");
    assert_eq!(
        sim.events("shop").await,
        [
            event("verdict", Some("up"), "degraded"),
            event("location_silent", Some("failing"), "silent"),
            event("verdict", Some("degraded"), "up"),
        ]
    );
    let silent_at: DateTime<Utc> = sim
        .client
        .query_one(
            "SELECT at FROM site_events WHERE kind = 'location_silent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(silent_at, sim.at(4, AP) + Duration::seconds(3 * INTERVAL));

    // Then every agent stops. No result comes, so the sweep (for the sink owning the
    // site's partition) finds them silent by the database's clock.
    assert!(verdicts::sweep_candidates(&sim.client, &[1])
        .await
        .unwrap()
        .is_empty());
    let sites = verdicts::sweep_candidates(&sim.client, &[0]).await.unwrap();
    assert_eq!(sites.len(), 1);
    let saved = verdicts::sweep(&mut sim.client, &sites).await.unwrap();
    assert_eq!(saved.events, 3, "eu and us silent, the verdict unknown");
    assert_eq!(sim.verdict("shop").await, "unknown");
    let again = verdicts::sweep(&mut sim.client, &sites).await.unwrap();
    assert_eq!(again.events, 0, "a second sweep finds nothing new");
    assert!(verdicts::sweep_candidates(&sim.client, &[0])
        .await
        .unwrap()
        .is_empty());

    // eu comes back, with a check of now: it votes again, the site is up.
    let mut back = sim.check("shop", EU, 0, Up);
    back.result.started_at = Utc::now().trunc_subsecs(3);
    sim.write(vec![back]).await;
    assert_eq!(sim.verdict("shop").await, "up");
    assert_eq!(sim.state("shop", EU).await, ("passing".into(), false));
}

#[tokio::test]
async fn redelivered_and_late_results_change_nothing() {
    let mut sim = Sim::new().await;
    let all = |o| [(EU, o), (US, o), (AP, o)];
    let up = sim.round("shop", 0, &all(Up));
    sim.write(up).await;
    let mut down = sim.round("shop", 1, &all(Down));
    down.extend(sim.round("shop", 2, &all(Down)));
    let first = sim.write(down.clone()).await;
    assert!(first.step("verdicts") >= 1);
    let before = snapshot(&sim.client).await;
    assert_eq!(sim.verdict("shop").await, "down");

    // The same batch again (a redelivery after a crash), and again mixed with new results.
    let again = sim.write(down.clone()).await;
    assert_eq!((again.inserted, again.step("verdicts")), (0, 0));
    assert_eq!(snapshot(&sim.client).await, before);

    // A late result: eu's check from before its latest counted one (a spool replayed late).
    let mut late = sim.check("shop", EU, 1, Up);
    late.result.started_at += Duration::seconds(1);
    let stats = sim.write(vec![late]).await;
    assert_eq!(stats.inserted, 1, "a late result is stored");
    let after = snapshot(&sim.client).await;
    assert_eq!(
        (after.0, after.1, &after.3),
        (before.0, before.1, &before.3)
    );
    assert_eq!(sim.verdict("shop").await, "down", "and decides nothing");
    assert_eq!(sim.incidents("shop").await.len(), 1);
}

#[tokio::test]
async fn checks_an_overloaded_agent_could_not_judge_do_not_count() {
    let mut sim = Sim::new().await;
    sim.define("shop").await;
    for round in 0..3 {
        let rows = sim.round("shop", round, &[(EU, Up), (US, Up), (AP, Up)]);
        sim.write(rows).await;
    }
    // ap's agent is overloaded: degraded `agent_overloaded` results, far past its thresholds.
    for round in 3..12 {
        let mut rows = sim.round("shop", round, &[(EU, Up), (US, Up)]);
        let mut r = sim.check("shop", AP, round, Outcome::Degraded);
        r.result.error = Some(CheckError {
            kind: ErrorKind::AgentOverloaded,
            message: "the agent was stalled for 6s".into(),
        });
        rows.push(r);
        sim.write(rows).await;
    }
    assert_eq!(sim.state("shop", AP).await, ("passing".into(), true));
    let events = sim.events("shop").await;
    assert_eq!(
        events,
        [event("location_silent", Some("passing"), "silent")]
    );
    let reason: String = sim
        .client
        .query_one("SELECT reason FROM site_events", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("overloaded agent"), "{reason}");
    assert_eq!(sim.verdict("shop").await, "up");
}

fn definition(
    site: &str,
    agent: &str,
    at: DateTime<Utc>,
    failure: u32,
    quorum: Quorum,
) -> CatalogEntry {
    CatalogEntry {
        site: site.into(),
        definition: Some(SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: site.into(),
            url: format!("http://127.0.0.1/{site}"),
            interval_ms: (INTERVAL * 1000) as u64,
            timeout_ms: 5000,
            failure_threshold: failure,
            success_threshold: 1,
            quorum,
            tags: vec!["tier-1".into()],
            group: Some("shop".into()),
            public: true,
            agent: agent.into(),
            location: Some(agent.into()),
            published_at: at,
        }),
        timestamp: at,
    }
}

#[tokio::test]
async fn the_catalog_sets_thresholds_and_quorum_and_the_latest_definition_wins() {
    let mut sim = Sim::new().await;
    let t = sim.start;
    // eu's definition, then us's disagreeing one (published later: it wins), then an older
    // one from ap (ignored), each maybe redelivered.
    let batch = Batch {
        catalog: vec![
            definition("shop", EU, t, 2, Quorum::Majority),
            definition("shop", US, t + Duration::seconds(1), 1, Quorum::Any),
            definition("shop", AP, t - Duration::seconds(5), 3, Quorum::All),
            definition("shop", EU, t, 2, Quorum::Majority),
        ],
        ..Batch::default()
    };
    let stats = sim.write_batch(batch.clone()).await;
    assert_eq!((stats.catalog_written, stats.catalog_conflicts), (1, 1));
    let again = sim.write_batch(batch).await;
    assert_eq!((again.catalog_written, again.catalog_conflicts), (0, 0));
    let row = sim
        .client
        .query_one(
            "SELECT agent, failure_threshold, quorum, tags, site_group, public, removed_at IS NULL
             FROM site_catalog WHERE site = 'shop'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), US);
    assert_eq!((row.get::<_, i32>(1), row.get::<_, &str>(2)), (1, "any"));
    assert_eq!(row.get::<_, Vec<String>>(3), ["tier-1"]);
    assert_eq!(row.get::<_, Option<&str>>(4), Some("shop"));
    assert!(row.get::<_, bool>(5) && row.get::<_, bool>(6));

    // failure_threshold 1 and quorum any: ap's first down check makes the site down.
    let rows = sim.round("shop", 0, &[(EU, Up), (US, Up), (AP, Up)]);
    sim.write(rows).await;
    let rows = sim.round("shop", 1, &[(EU, Up), (US, Up), (AP, Down)]);
    sim.write(rows).await;
    assert_eq!(sim.verdict("shop").await, "down");
    let interval: i64 = sim
        .client
        .query_one("SELECT interval_ms FROM site_verdicts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(interval, INTERVAL * 1000, "the catalog's interval");

    // A tombstone removes it from the catalog, keeping its history.
    let tombstone = CatalogEntry {
        site: "shop".into(),
        definition: None,
        timestamp: t + Duration::seconds(2),
    };
    let stats = sim
        .write_batch(Batch {
            catalog: vec![tombstone],
            ..Batch::default()
        })
        .await;
    assert_eq!(stats.catalog_written, 1);
    let removed: bool = sim
        .client
        .query_one(
            "SELECT removed_at IS NOT NULL FROM site_catalog WHERE site = 'shop'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(removed);
    assert_eq!(sim.incidents("shop").await.len(), 1);
}

#[tokio::test]
async fn a_verdicts_reason_follows_its_state_while_the_verdict_stays() {
    let mut sim = Sim::new().await;
    for round in 0..4 {
        let rows = sim.round("shop", round, &[(EU, Down), (US, Down), (AP, Up)]);
        sim.write(rows).await;
    }
    assert_eq!(sim.verdict("shop").await, "down");
    assert!(
        sim.reason("shop")
            .await
            .starts_with("2 of 3 locations failing (quorum 2)"),
        "{}",
        sim.reason("shop").await
    );
    // One batch: ap fails too. Still down, no event; the reason says three now.
    let events = sim.events("shop").await.len();
    let mut rows = Vec::new();
    for round in 4..8 {
        rows.extend(sim.round("shop", round, &[(EU, Down), (US, Down), (AP, Down)]));
    }
    sim.write(rows).await;
    assert_eq!(sim.verdict("shop").await, "down");
    assert_eq!(
        sim.events("shop").await.len(),
        events,
        "no change, no event"
    );
    let three = "3 of 3 locations failing (quorum 2): ap (connect: refused from ap)";
    let reason = sim.reason("shop").await;
    assert!(reason.starts_with(three), "{reason}");
    // Then, after another round, a location seen for the first time reports only what an
    // overloaded agent took: it counts for nothing, so the reason stays the last judgement's
    // (not yet voting).
    let mut rows = sim.round("shop", 8, &[(EU, Down), (US, Down), (AP, Down)]);
    let mut overloaded = sim.check("shop", "sa", 9, Outcome::Degraded);
    overloaded.result.error = Some(CheckError {
        kind: ErrorKind::AgentOverloaded,
        message: "the agent was stalled for 6s".into(),
    });
    rows.push(overloaded);
    sim.write(rows).await;
    assert_eq!(sim.verdict("shop").await, "down");
    let reason = sim.reason("shop").await;
    assert!(reason.starts_with(three), "{reason}");
}
