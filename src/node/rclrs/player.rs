//! `motedb play`'s control services with rclrs: `~/pause`, `~/resume`,
//! `~/toggle_paused`, `~/play_next` (std_srvs/Trigger), `~/set_rate`
//! (motedb_interfaces/SetRate) and `~/is_paused`, on an executor of their
//! own, spun by a thread until the returned stopper runs.

use crate::play::Control;
use ::rclrs::{Context, CreateBasicExecutor, InitOptions, SpinOptions};
use ros_env::motedb_interfaces::srv::{
    IsPaused, IsPaused_Request, IsPaused_Response, SetRate, SetRate_Request, SetRate_Response,
};
use ros_env::std_srvs::srv::{Trigger, Trigger_Request, Trigger_Response};
use std::sync::Arc;
use std::time::Duration;

/// How long `~/play_next` waits for the player to publish.
const PLAY_NEXT_WAIT: Duration = Duration::from_secs(5);

fn answer(ok: bool, yes: &str, no: &str) -> Trigger_Response {
    Trigger_Response {
        success: true,
        message: if ok { yes } else { no }.to_string(),
    }
}

/// Starts the services; the closure returned stops them and joins the
/// thread.
pub fn serve(node_name: &str, control: &Arc<Control>) -> Result<Box<dyn FnOnce() + Send>, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (name, control) = (node_name.to_string(), Arc::clone(control));
    let thread = std::thread::Builder::new()
        .name("motedb-player-services".into())
        .spawn(move || {
            let built = (|| -> Result<_, ::rclrs::RclrsError> {
                let context = Context::new(Vec::<String>::new(), InitOptions::default())?;
                let executor = context.create_basic_executor();
                let node = executor.create_node(name.as_str())?;
                let c = Arc::clone(&control);
                let pause = node
                    .create_service::<Trigger, _>("~/pause", move |_: Trigger_Request| {
                        answer(c.pause(), "paused", "was already paused")
                    })?;
                let c = Arc::clone(&control);
                let resume = node
                    .create_service::<Trigger, _>("~/resume", move |_: Trigger_Request| {
                        answer(c.resume(), "resumed", "was not paused")
                    })?;
                let c = Arc::clone(&control);
                let toggle = node.create_service::<Trigger, _>(
                    "~/toggle_paused",
                    move |_: Trigger_Request| answer(c.toggle_paused(), "paused", "resumed"),
                )?;
                let c = Arc::clone(&control);
                let next =
                    node.create_service::<Trigger, _>("~/play_next", move |_: Trigger_Request| {
                        match c.play_next(PLAY_NEXT_WAIT) {
                            Ok(log) => Trigger_Response {
                                success: true,
                                message: format!(
                                    "published the message of log time {}.{:09}",
                                    log / 1_000_000_000,
                                    log % 1_000_000_000
                                ),
                            },
                            Err(message) => Trigger_Response {
                                success: false,
                                message,
                            },
                        }
                    })?;
                let c = Arc::clone(&control);
                let rate =
                    node.create_service::<SetRate, _>("~/set_rate", move |r: SetRate_Request| {
                        match c.set_rate(r.rate) {
                            Ok(()) => SetRate_Response {
                                success: true,
                                message: format!("rate {}", r.rate),
                            },
                            Err(message) => SetRate_Response {
                                success: false,
                                message,
                            },
                        }
                    })?;
                let c = Arc::clone(&control);
                let is_paused = node.create_service::<IsPaused, _>(
                    "~/is_paused",
                    move |_: IsPaused_Request| IsPaused_Response {
                        paused: c.is_paused(),
                    },
                )?;
                let services = (pause, resume, toggle, next, rate, is_paused);
                Ok((executor, node, services))
            })();
            match built {
                Ok((mut executor, node, services)) => {
                    let commands = Arc::clone(executor.commands());
                    if ready_tx.send(Ok(commands)).is_err() {
                        return;
                    }
                    let _errors = executor.spin(SpinOptions::default());
                    drop((services, node));
                }
                Err(e) => {
                    let _sent = ready_tx.send(Err(e.to_string()));
                }
            }
        })
        .map_err(|e| format!("spawn the services thread: {e}"))?;
    let commands = ready_rx
        .recv()
        .map_err(|_| "the services thread ended before it was ready".to_string())?
        .map_err(|e| format!("the player's services: {e}"))?;
    // `spin` clears the halt flag when it starts: halt until the thread
    // is gone, so a stop that came before the spin is not lost.
    Ok(Box::new(move || {
        while !thread.is_finished() {
            commands.halt_spinning();
            std::thread::sleep(Duration::from_millis(10));
        }
        let _joined = thread.join();
    }))
}
