//! What an object of the world is: a shape, a colour, a surface pattern, a size, and the
//! background it is drawn on. Each value has the words captions use for it.

/// Declares a `Copy` enum with its list of values and their caption words.
macro_rules! attribute {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => [$($word:literal),+]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical word, then the other words captions may use.
            pub fn words(self) -> &'static [&'static str] {
                match self { $($name::$variant => &[$($word),+]),+ }
            }

            /// The canonical word (the one class names use).
            pub fn word(self) -> &'static str {
                self.words()[0]
            }

            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

attribute! {
    /// Ten outlines, each a pure function of the object's own coordinates.
    Shape {
        Circle => ["circle", "disc", "round shape"],
        Square => ["square", "box", "block"],
        Triangle => ["triangle", "pyramid", "wedge"],
        Diamond => ["diamond", "rhombus", "lozenge"],
        Cross => ["cross", "plus", "plus sign"],
        Ring => ["ring", "hoop", "donut"],
        Star => ["star", "starburst", "star shape"],
        Hexagon => ["hexagon", "hex", "six-sided shape"],
        Heart => ["heart", "love heart", "heart shape"],
        Crescent => ["crescent", "moon", "half moon"],
    }
}

attribute! {
    /// Ten named hues (each drawn with a little jitter).
    Colour {
        Red => ["red", "crimson", "scarlet"],
        Orange => ["orange", "tangerine", "amber"],
        Yellow => ["yellow", "golden", "lemon"],
        Green => ["green", "emerald", "lime"],
        Cyan => ["cyan", "turquoise", "aqua"],
        Blue => ["blue", "navy", "cobalt"],
        Purple => ["purple", "violet", "lilac"],
        Pink => ["pink", "rose", "magenta"],
        White => ["white", "ivory", "snowy"],
        Brown => ["brown", "chocolate", "tan"],
    }
}

attribute! {
    /// How the surface of the object is filled.
    Pattern {
        Solid => ["solid", "plain", "filled"],
        Striped => ["striped", "stripy", "banded"],
        Dotted => ["dotted", "spotted", "polka dot"],
        Checked => ["checked", "checkered", "chequered"],
        Outlined => ["outlined", "hollow", "outline"],
    }
}

attribute! {
    /// Half-size ranges of the object in a 32-pixel image.
    Size {
        Small => ["small", "little", "tiny"],
        Large => ["large", "big", "huge"],
    }
}

attribute! {
    /// What the object is drawn on.
    Background {
        Dark => ["dark", "black", "night"],
        Grey => ["grey", "gray", "stone"],
        Noisy => ["noisy", "grainy", "speckled"],
    }
}

impl Colour {
    /// The hue's RGB before jitter.
    pub fn rgb(self) -> [f64; 3] {
        match self {
            Colour::Red => [215.0, 35.0, 35.0],
            Colour::Orange => [240.0, 130.0, 20.0],
            Colour::Yellow => [235.0, 215.0, 30.0],
            Colour::Green => [40.0, 165.0, 55.0],
            Colour::Cyan => [30.0, 200.0, 210.0],
            Colour::Blue => [35.0, 75.0, 215.0],
            Colour::Purple => [135.0, 45.0, 190.0],
            Colour::Pink => [245.0, 120.0, 185.0],
            Colour::White => [235.0, 235.0, 235.0],
            Colour::Brown => [125.0, 75.0, 35.0],
        }
    }
}

/// One attribute of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    Shape,
    Colour,
    Pattern,
    Size,
    Background,
}

impl Axis {
    pub fn len(self) -> usize {
        match self {
            Axis::Shape => Shape::ALL.len(),
            Axis::Colour => Colour::ALL.len(),
            Axis::Pattern => Pattern::ALL.len(),
            Axis::Size => Size::ALL.len(),
            Axis::Background => Background::ALL.len(),
        }
    }

    /// Never empty: every axis has values.
    pub fn is_empty(self) -> bool {
        false
    }
}

impl Axis {
    pub const ALL: [Axis; 5] = [
        Axis::Shape,
        Axis::Colour,
        Axis::Pattern,
        Axis::Size,
        Axis::Background,
    ];

    /// The words of value `v` of this axis.
    pub fn words(self, v: usize) -> &'static [&'static str] {
        match self {
            Axis::Shape => Shape::ALL[v].words(),
            Axis::Colour => Colour::ALL[v].words(),
            Axis::Pattern => Pattern::ALL[v].words(),
            Axis::Size => Size::ALL[v].words(),
            Axis::Background => Background::ALL[v].words(),
        }
    }
}

/// Everything that decides an image, besides the jitter drawn while drawing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub shape: Shape,
    pub colour: Colour,
    pub pattern: Pattern,
    pub size: Size,
    pub background: Background,
}

impl Attributes {
    /// The value index of `axis`.
    pub fn value(&self, axis: Axis) -> usize {
        match axis {
            Axis::Shape => self.shape.index(),
            Axis::Colour => self.colour.index(),
            Axis::Pattern => self.pattern.index(),
            Axis::Size => self.size.index(),
            Axis::Background => self.background.index(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_distinct_words() {
        let mut all: Vec<&str> = Vec::new();
        for s in Shape::ALL {
            all.extend(s.words());
        }
        for c in Colour::ALL {
            all.extend(c.words());
        }
        for p in Pattern::ALL {
            all.extend(p.words());
        }
        for s in Size::ALL {
            all.extend(s.words());
        }
        for b in Background::ALL {
            all.extend(b.words());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a word names two values");
        assert_eq!(Shape::Heart.word(), "heart");
        assert_eq!(Colour::ALL[Colour::Pink.index()], Colour::Pink);
    }
}
