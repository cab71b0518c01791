//! Spending alerts (Tokia, issue 14 item 6): an organization's rules `{kind, threshold, channel}`
//! — the balance below, today's spend above or this month's spend above a threshold in BRL —
//! checked when usage settles and when the ledger moves, each firing once per crossing.
//!
//! - **When.** The usage writer hands every stored batch to a [`Checker`] (a set of the
//!   organizations that were billed, and a wake-up): nothing on the writer's path but a set
//!   insert. The checker, run beside the writer, asks which of those organizations have alerts
//!   (one indexed lookup for the whole set; nothing else happens for organizations without
//!   any) and [`check`]s each. Every ledger entry posted through `ledger::post` (operator and CLI
//!   top-ups and adjustments, paid PIX charges) is followed by a [`check`] of its
//!   organization, and so is a new alert.
//! - **What.** `balance_below` compares the organization's balance (the column the gateway
//!   spends from, which the wallet's `balance_brl` equals; a postpaid organization has none, so
//!   its balance alerts never fire); `daily_spend_above` / `monthly_spend_above` its billed BRL
//!   since the start of the day / month in [`TZ`]. Below is strict (`<`), above is strict
//!   (`>`).
//! - **Once per crossing.** A check locks the organization's alerts, so checks of one
//!   organization run one after the other and each reads what the previous one committed. A
//!   crossed, armed alert fires in one conditional update (`… WHERE armed`); a disarmed alert
//!   whose condition is false again is armed again. A spend alert last fired in an earlier day
//!   or month counts as armed (its spend went back to zero when the period began, whether or
//!   not a check saw it).
//! - **A firing** is one `alert_firing` row plus its notifications, in the same transaction:
//!   for `email`, one mail per owner of the organization in the mail outbox (sent by the mail
//!   sender, `crate::mail`); for `webhook`, one `alert_fired` delivery per active webhook of the
//!   organization subscribed to that event (none subscribed: the firing is recorded with no
//!   notification).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::DomainError;
use super::keys::KeyOwner;
use super::money::Micros;
use crate::store::alerts as db;
use crate::usage::UsageEvent;

pub use db::AlertRow as Alert;

/// Most alerts of one organization.
pub const MAX_ALERTS: i64 = 50;
/// Largest threshold: R$ 10,000,000.
pub const MAX_THRESHOLD: Micros = Micros(10_000_000 * 1_000_000);
/// The time zone of days and months (Tokia's users are in Brazil; no preference exists yet).
pub const TZ: &str = super::usage::DEFAULT_TZ;
/// What a firing's mail is, as the outbox (and `GET /v1/me/notifications`) names it.
pub const MAIL_TEMPLATE: &str = "alert_fired";
/// The webhook event of a firing (a webhook subscribes to it like to any of
/// `webhooks::EVENTS`).
pub const WEBHOOK_EVENT: &str = "alert_fired";

/// What an alert watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The balance goes below the threshold.
    BalanceBelow,
    /// Today's spend goes above the threshold.
    DailySpendAbove,
    /// This month's spend goes above the threshold.
    MonthlySpendAbove,
}

impl Kind {
    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Kind, DomainError> {
        match s {
            "balance_below" => Ok(Kind::BalanceBelow),
            "daily_spend_above" => Ok(Kind::DailySpendAbove),
            "monthly_spend_above" => Ok(Kind::MonthlySpendAbove),
            _ => Err(DomainError::invalid(
                "kind",
                "balance_below, daily_spend_above or monthly_spend_above",
            )),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BalanceBelow => "balance_below",
            Kind::DailySpendAbove => "daily_spend_above",
            Kind::MonthlySpendAbove => "monthly_spend_above",
        }
    }

    /// Whether `value` is past `threshold` (strictly).
    pub fn crossed(self, value: i64, threshold: i64) -> bool {
        match self {
            Kind::BalanceBelow => value < threshold,
            Kind::DailySpendAbove | Kind::MonthlySpendAbove => value > threshold,
        }
    }
}

/// Where a firing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A mail to each owner.
    Email,
    /// An [`WEBHOOK_EVENT`] delivery to each subscribed webhook.
    Webhook,
}

impl Channel {
    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Channel, DomainError> {
        match s {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            _ => Err(DomainError::invalid("channel", "email or webhook")),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

/// A threshold: a plain decimal (`10`, `0.5`, `12.345678`; at most 6 decimals, no sign, no
/// exponent), more than zero and at most [`MAX_THRESHOLD`].
pub fn parse_threshold(text: &str) -> Result<Micros, DomainError> {
    let reason = "a decimal greater than 0 and at most 10000000, with at most 6 decimals";
    let m = crate::config::resolve::parse_decimal_micros(text)
        .map_err(|_| DomainError::invalid("threshold_brl", reason))?;
    if m <= 0 || m > MAX_THRESHOLD.0 {
        return Err(DomainError::invalid("threshold_brl", reason));
    }
    Ok(Micros(m))
}

/// A checked new alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAlert {
    /// What it watches.
    pub kind: Kind,
    /// Its threshold.
    pub threshold: Micros,
    /// Where it goes.
    pub channel: Channel,
}

impl NewAlert {
    /// Check the three fields, in the order `kind`, `threshold_brl`, `channel`.
    pub fn parse(kind: &str, threshold_brl: &str, channel: &str) -> Result<NewAlert, DomainError> {
        Ok(NewAlert {
            kind: Kind::parse(kind)?,
            threshold: parse_threshold(threshold_brl)?,
            channel: Channel::parse(channel)?,
        })
    }
}

/// Why a valid alert was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The organization has [`MAX_ALERTS`] already.
    TooMany,
    /// The organization has this rule (kind, threshold, channel) already.
    Duplicate,
}

/// Create an alert for `who`'s organization (audited `alert.create`), then check the
/// organization's alerts at once, so an alert created past its threshold fires now. The alert
/// as it is after that check.
pub async fn create(
    pool: &PgPool,
    who: &KeyOwner,
    new: NewAlert,
) -> Result<Result<Alert, Refused>, DomainError> {
    let org = who.organization_id;
    let mut tx = pool.begin().await?;
    db::lock_creations(&mut *tx, org).await?;
    if db::count(&mut *tx, org).await? >= MAX_ALERTS {
        return Ok(Err(Refused::TooMany));
    }
    let id = match db::insert(
        &mut *tx,
        org,
        new.kind.as_str(),
        new.threshold.0,
        new.channel.as_str(),
        who.user_id,
    )
    .await
    {
        Ok(id) => id,
        Err(sqlx::Error::Database(d)) if d.constraint() == Some(db::RULE_KEY) => {
            return Ok(Err(Refused::Duplicate));
        }
        Err(e) => return Err(e.into()),
    };
    super::audit::change(
        &mut *tx,
        org,
        who.user_id,
        "alert.create",
        &format!("alert:{id}"),
        None,
        Some(json!({
            "id": id, "kind": new.kind.as_str(), "threshold_brl": new.threshold.decimal(),
            "channel": new.channel.as_str(),
        })),
    )
    .await?;
    tx.commit().await?;
    check(pool, org).await;
    db::get(pool, org, id, TZ)
        .await?
        .map(Ok)
        .ok_or(DomainError::Internal)
}

/// `org`'s alerts, oldest first.
pub async fn list(pool: &PgPool, org: Uuid) -> Result<Vec<Alert>, DomainError> {
    Ok(db::list(pool, org, TZ).await?)
}

/// What a check does with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Crossed and armed: fire.
    Fire,
    /// Not crossed and disarmed: arm again.
    Rearm,
    /// Nothing changes.
    Keep,
}

/// The rule of a check, for one alert: `value` is the balance or the period's spend (`None`:
/// nothing to compare, a postpaid organization's balance), `period` the current day or month of
/// a spend alert and `fired_period` the one of its last firing.
pub fn decide(
    kind: Kind,
    threshold: i64,
    value: Option<i64>,
    armed: bool,
    fired_period: Option<&str>,
    period: Option<&str>,
) -> Action {
    let crossed = value.is_some_and(|v| kind.crossed(v, threshold));
    // a spend alert fired in an earlier period is armed: its spend started again from zero
    let armed_now = armed || (period.is_some() && fired_period.is_some() && fired_period != period);
    match (crossed, armed_now, armed) {
        (true, true, _) => Action::Fire,
        (false, _, false) => Action::Rearm,
        _ => Action::Keep,
    }
}

/// Check `org`'s alerts now; a failure is logged (the next settle or ledger entry checks
/// again). For callers that must not fail because of an alert.
pub async fn check(pool: &PgPool, org: Uuid) {
    if let Err(e) = check_org(pool, org).await {
        tracing::warn!(%org, error = %e, "alert check failed");
    }
}

/// Check `org`'s alerts in one transaction: fire the crossed armed ones (each with its firing
/// row and notifications), arm again the disarmed ones whose condition is false. How many
/// fired.
pub async fn check_org(pool: &PgPool, org: Uuid) -> Result<usize, DomainError> {
    let mut tx = pool.begin().await?;
    let alerts = db::lock_for_check(&mut *tx, org).await?;
    if alerts.is_empty() {
        return Ok(0);
    }
    let snap = db::snapshot(&mut *tx, org, TZ).await?;
    let has = |k: Kind| alerts.iter().any(|a| a.kind == k.as_str());
    let day = if has(Kind::DailySpendAbove) {
        Some(db::spend(&mut *tx, org, "day", TZ).await?)
    } else {
        None
    };
    let month = if has(Kind::MonthlySpendAbove) {
        Some(db::spend(&mut *tx, org, "month", TZ).await?)
    } else {
        None
    };
    let mut fired = 0;
    for a in &alerts {
        let Ok(kind) = Kind::parse(&a.kind) else {
            tracing::error!(alert = %a.alert_id, kind = %a.kind, "alert of an unknown kind skipped");
            continue;
        };
        let (value, period) = match kind {
            Kind::BalanceBelow => (snap.balance, None),
            Kind::DailySpendAbove => (day, Some(snap.day.as_str())),
            Kind::MonthlySpendAbove => (month, Some(snap.month.as_str())),
        };
        let action = decide(
            kind,
            a.threshold_brl_micros,
            value,
            a.armed,
            a.fired_period.as_deref(),
            period,
        );
        match (action, value) {
            (Action::Fire, Some(value)) => {
                if let Some(at) = db::fire(&mut *tx, a.alert_id, period).await? {
                    notify(&mut tx, org, a, kind, value, period, at).await?;
                    fired += 1;
                }
            }
            (Action::Rearm, _) => {
                db::rearm(&mut *tx, a.alert_id).await?;
            }
            _ => {}
        }
    }
    tx.commit().await?;
    Ok(fired)
}

/// Record a firing and queue its notifications.
async fn notify(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org: Uuid,
    a: &db::CheckRow,
    kind: Kind,
    value: i64,
    period: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    let threshold = Micros(a.threshold_brl_micros);
    let channel = Channel::parse(&a.channel)?;
    let owners = match channel {
        Channel::Email => db::owners(&mut **tx, org).await?,
        Channel::Webhook => Vec::new(),
    };
    let hooks = match channel {
        Channel::Webhook => db::webhooks(&mut **tx, org, WEBHOOK_EVENT).await?,
        Channel::Email => Vec::new(),
    };
    let firing = db::insert_firing(
        &mut **tx,
        &db::NewFiring {
            alert_id: a.alert_id,
            organization_id: org,
            kind: kind.as_str(),
            threshold_brl_micros: threshold.0,
            channel: channel.as_str(),
            value_brl_micros: value,
            period,
            notifications: (owners.len() + hooks.len()).min(i32::MAX as usize) as i32,
            fired_at: at,
        },
    )
    .await?;
    let when = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    if let Some(first) = owners.first() {
        let (subject, body) = mail(
            &first.organization_name,
            a.alert_id,
            kind,
            threshold,
            Micros(value),
            &when,
        );
        for o in &owners {
            crate::store::accounts::queue_email(
                &mut **tx,
                &o.email,
                MAIL_TEMPLATE,
                &subject,
                &body,
            )
            .await?;
        }
    }
    if !hooks.is_empty() {
        let payload = json!({
            "event": WEBHOOK_EVENT,
            "firing_id": firing,
            "alert_id": a.alert_id,
            "organization_id": org,
            "kind": kind.as_str(),
            "threshold_brl": threshold.json_number(),
            "value_brl": Micros(value).json_number(),
            "period": period,
            "fired_at": when,
        });
        let dedup = format!("{WEBHOOK_EVENT}:{firing}");
        for h in hooks {
            db::queue_delivery(&mut **tx, h, WEBHOOK_EVENT, &dedup, &payload).await?;
        }
    }
    Ok(())
}

/// An amount as a Brazilian reads it: `R$ 9,85`, `R$ 10,00`, `R$ 0,000123` (exact).
pub fn reais(m: Micros) -> String {
    let text = m.decimal();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    format!("R$ {int},{frac:0<2}")
}

/// The subject and body of a firing's mail (pt-BR).
pub fn mail(
    organization: &str,
    alert: Uuid,
    kind: Kind,
    threshold: Micros,
    value: Micros,
    when: &str,
) -> (String, String) {
    let (rule, now) = match kind {
        Kind::BalanceBelow => ("saldo abaixo de", "Saldo atual"),
        Kind::DailySpendAbove => ("gasto de hoje acima de", "Gasto de hoje"),
        Kind::MonthlySpendAbove => ("gasto do mês acima de", "Gasto do mês"),
    };
    let condition = format!("{rule} {}", reais(threshold));
    let subject = format!("Alerta Tokia: {condition}");
    let body = format!(
        "Seu alerta de gastos disparou.\n\n\
         Organização: {organization}\n\
         Condição: {condition}\n\
         {now}: {}\n\
         Quando: {when}\n\
         Alerta: {alert}\n\n\
         O alerta dispara uma vez a cada cruzamento e volta a valer quando o valor retorna \
         ao limite (um alerta de gasto, também no dia ou mês seguinte; dias e meses no horário \
         de Brasília).\n",
        reais(value)
    );
    (subject, body)
}

/// The organizations whose usage settled since their alerts were last checked, and a wake-up
/// for the task that checks them ([`Checker::run`], beside the usage writer). The writer only
/// inserts into a set, so a slow or failing check never holds it up, and a burst of batches of
/// one organization is one check.
#[derive(Default)]
pub struct Checker {
    /// Organizations to check. A `parking_lot` mutex held for a set insert or a take, never
    /// across an await.
    pending: parking_lot::Mutex<HashSet<Uuid>>,
    wake: tokio::sync::Notify,
    closed: AtomicBool,
}

impl Checker {
    /// A batch was stored: its billed organizations (an event with a cost > 0) are due a check.
    pub fn settled(&self, batch: &[UsageEvent]) {
        let mut any = false;
        {
            let mut p = self.pending.lock();
            for e in batch {
                if let Some(org) = e.organization_id
                    && e.cost_billed_brl_micros.is_some_and(|c| c > 0)
                {
                    p.insert(org);
                    any = true;
                }
            }
        }
        if any {
            self.wake.notify_one();
        }
    }

    /// No batch will follow: [`Checker::run`] checks what is pending and returns.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Check pending organizations as they come, until [`Checker::close`].
    pub async fn run(&self, pool: &PgPool) {
        loop {
            self.wake.notified().await;
            let orgs: Vec<Uuid> = std::mem::take(&mut *self.pending.lock())
                .into_iter()
                .collect();
            if !orgs.is_empty() {
                match db::orgs_with_alerts(pool, &orgs).await {
                    Ok(with) => {
                        for org in with {
                            check(pool, org).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, orgs = orgs.len(), "alert lookup failed; checking at the next settle");
                    }
                }
            }
            if self.closed.load(Ordering::Acquire) && self.pending.lock().is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_exact_positive_decimals() {
        assert_eq!(parse_threshold("10").unwrap(), Micros(10_000_000));
        assert_eq!(parse_threshold("0.000001").unwrap(), Micros(1));
        assert_eq!(parse_threshold("9.90").unwrap(), Micros(9_900_000));
        assert_eq!(parse_threshold("10000000").unwrap(), MAX_THRESHOLD);
        for bad in [
            "",
            "0",
            "0.0",
            "-1",
            "+1",
            "1e3",
            "1.0000001",
            "10000000.000001",
            "abc",
            "1,5",
            "99999999999999999999",
            " ",
            ".5",
        ] {
            assert!(parse_threshold(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fields_are_checked_in_order() {
        let e = |r: Result<NewAlert, DomainError>| match r {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(e(NewAlert::parse("x", "0", "sms")), "kind");
        assert_eq!(
            e(NewAlert::parse("balance_below", "0", "sms")),
            "threshold_brl"
        );
        assert_eq!(e(NewAlert::parse("balance_below", "1", "sms")), "channel");
        assert!(NewAlert::parse("monthly_spend_above", "1", "webhook").is_ok());
    }

    #[test]
    fn an_alert_fires_once_per_crossing() {
        let b = Kind::BalanceBelow;
        // armed and crossed: fire; crossed again while disarmed: nothing
        assert_eq!(decide(b, 100, Some(99), true, None, None), Action::Fire);
        assert_eq!(decide(b, 100, Some(50), false, None, None), Action::Keep);
        // back (equal is not below): armed again, then the next crossing fires
        assert_eq!(decide(b, 100, Some(100), false, None, None), Action::Rearm);
        assert_eq!(decide(b, 100, Some(100), true, None, None), Action::Keep);
        // a postpaid organization has no balance to compare
        assert_eq!(decide(b, 100, None, true, None, None), Action::Keep);
        let d = Kind::DailySpendAbove;
        assert_eq!(
            decide(d, 100, Some(100), true, None, Some("2026-05-14")),
            Action::Keep
        );
        assert_eq!(
            decide(d, 100, Some(101), true, None, Some("2026-05-14")),
            Action::Fire
        );
        let today = Some("2026-05-14");
        assert_eq!(decide(d, 100, Some(500), false, today, today), Action::Keep);
        // the next day it fires again even if no check saw the spend go back
        assert_eq!(
            decide(d, 100, Some(101), false, today, Some("2026-05-15")),
            Action::Fire
        );
        assert_eq!(
            decide(d, 100, Some(5), false, today, Some("2026-05-15")),
            Action::Rearm
        );
    }

    #[test]
    fn amounts_read_as_reais() {
        assert_eq!(reais(Micros(9_850_000)), "R$ 9,85");
        assert_eq!(reais(Micros(10_000_000)), "R$ 10,00");
        assert_eq!(reais(Micros(9_900_000)), "R$ 9,90");
        assert_eq!(reais(Micros(123)), "R$ 0,000123");
        assert_eq!(reais(Micros(-50_000)), "R$ -0,05");
    }
}
