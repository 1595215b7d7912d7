//! `pg_drop_notify`: a LISTEN client silently misses events. Attached
//! `downstream` (the default), NotificationResponse messages from the server
//! are swallowed: all of them, or those of the channels named in `channels`.

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession};
use faultgate_guest::{Attrs, ConnInfo, Description, Step, attribute};

struct DropNotify {
    channels: Vec<String>,
}

impl PgFault for DropNotify {
    fn describe() -> Description {
        Description::new("pg_drop_notify", "Swallows LISTEN/NOTIFY notifications")
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[faultgate_guest::Direction::Downstream])
            .attribute(attribute::text(
                "channels",
                "",
                "comma-separated channels to drop (empty: every channel)",
            ))
            .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            channels: attrs
                .text("channels", "")?
                .split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect(),
        })
    }
}

impl PgSession for DropNotify {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        let dropped = message
            .notification_channel()
            .is_some_and(|channel| self.channels.is_empty() || self.channels.contains(&channel));
        if dropped {
            vec![Step::Drop.into()]
        } else {
            vec![PgAction::forward_all(&message)]
        }
    }
}

faultgate_guest::export_postgres_fault!(DropNotify);
