//! A simple AI: its input is a pure function of the game state, the frame and its
//! handle (no randomness of its own), so a bot's play is reproducible.

use crate::game::{ArenaInput, Player, Pos, Shot, DASH, DOWN, FIRE, LEFT, ONE, RIGHT, UP};

/// What the bot sees: every avatar and shot.
pub struct View<'a> {
    /// Avatars with positions.
    pub players: &'a [(Player, Pos)],
    /// Shots with positions.
    pub shots: &'a [(Shot, Pos)],
}

/// The bot's buttons for player `me` at `frame`.
pub fn bot_input(me: u8, frame: u32, view: &View<'_>) -> ArenaInput {
    let Some((_, my)) = view.players.iter().find(|(p, _)| p.handle == me) else {
        return 0;
    };
    // Nearest opponent (ties: lowest handle).
    let target = view
        .players
        .iter()
        .filter(|(p, _)| p.handle != me)
        .min_by_key(|(p, pos)| (dist2(my, pos), p.handle));
    let Some((_, target)) = target else {
        return 0;
    };
    let (dx, dy) = (target.x - my.x, target.y - my.y);
    let mut input = 0;
    // Keep a fighting distance: close in when far, strafe sideways when near; the
    // strafing side flips every two seconds, differently per bot.
    let phase = (frame / 120 + u32::from(me)).is_multiple_of(2);
    let far = dx.abs().max(dy.abs()) > 160 * ONE;
    if far {
        input |= toward(dx, dy);
    } else if dx.abs() > dy.abs() {
        input |= if phase { UP } else { DOWN };
        input |= if dx.abs() < 90 * ONE { away_x(dx) } else { 0 };
    } else {
        input |= if phase { LEFT } else { RIGHT };
        input |= if dy.abs() < 90 * ONE { away_y(dy) } else { 0 };
    }
    // Line up a shot: fire when the target is on one of the 8 firing lines, facing it.
    let aligned =
        dx.abs() < 12 * ONE || dy.abs() < 12 * ONE || (dx.abs() - dy.abs()).abs() < 14 * ONE;
    if aligned {
        input = (input & (DASH | FIRE)) | toward(dx, dy) | FIRE;
    }
    // Dash away from a shot about to hit.
    let threatened = view
        .shots
        .iter()
        .any(|(s, p)| s.owner != me && dist2(my, p) < (40 * ONE as i64).pow(2));
    if threatened && frame % 3 == u32::from(me) % 3 {
        input |= DASH;
    }
    input
}

fn dist2(a: &Pos, b: &Pos) -> i64 {
    let (dx, dy) = (i64::from(a.x - b.x), i64::from(a.y - b.y));
    dx * dx + dy * dy
}

fn toward(dx: i32, dy: i32) -> ArenaInput {
    let tol = 8 * ONE;
    let mut input = 0;
    if dx > tol {
        input |= RIGHT;
    } else if dx < -tol {
        input |= LEFT;
    }
    if dy > tol {
        input |= UP;
    } else if dy < -tol {
        input |= DOWN;
    }
    input
}

fn away_x(dx: i32) -> ArenaInput {
    if dx > 0 {
        LEFT
    } else {
        RIGHT
    }
}

fn away_y(dy: i32) -> ArenaInput {
    if dy > 0 {
        DOWN
    } else {
        UP
    }
}
