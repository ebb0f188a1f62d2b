"""Movie themes of the synthetic catalog, written for this project.

Each theme is a list of keywords, the most telling first (the synthetic catalog draws early
keywords more often). No keyword belongs to two themes, so the planted ground truth is exact.
The filler keywords, which belong to no theme, are plain two-word phrases.
"""

from __future__ import annotations

# One keyword a line would make this table 800 lines long.
# fmt: off
THEMES: dict[str, tuple[str, ...]] = {
    "science fiction": (
        "alien", "space", "robot", "dystopia", "spaceship", "future", "time travel", "planet",
        "artificial intelligence", "android", "laser", "galaxy", "astronaut", "cyborg",
        "space station", "mutant", "teleportation", "parallel universe", "clone", "wormhole",
        "alien invasion", "mars", "cryogenics", "hologram", "starship", "colony", "asteroid",
        "virtual reality", "genetic engineering", "mothership",
    ),
    "romance": (
        "love", "wedding", "paris", "kiss", "first love", "romantic comedy", "marriage proposal",
        "love triangle", "bride", "honeymoon", "dating", "soulmate", "valentine's day",
        "engagement", "long distance relationship", "flirting", "love letter", "heartbreak",
        "blind date", "groom", "forbidden love", "second chance", "bridesmaid", "infatuation",
        "candlelight dinner", "serenade", "courtship", "unrequited love", "elopement",
        "love at first sight",
    ),
    "crime": (
        "detective", "murder", "police", "heist", "gangster", "mafia", "robbery", "investigation",
        "corruption", "serial killer", "bank robbery", "drug dealer", "undercover", "hitman",
        "interrogation", "crime boss", "kidnapping", "money laundering", "informant",
        "organized crime", "prison", "getaway car", "con artist", "forensics", "homicide",
        "smuggling", "ransom", "witness protection", "crime scene", "mob",
    ),
    "war": (
        "world war ii", "soldier", "battle", "army", "nazi", "vietnam war", "prisoner of war",
        "general", "trench", "resistance", "sniper", "bombing", "d-day", "military", "navy",
        "platoon", "tank", "invasion", "airplane", "concentration camp", "world war i",
        "submarine", "medal of honor", "veteran", "occupation", "spy", "battlefield", "ambush",
        "paratrooper", "surrender",
    ),
    "horror": (
        "ghost", "haunted house", "vampire", "zombie", "demon", "possession", "exorcism",
        "slasher", "witch", "curse", "monster", "werewolf", "supernatural", "nightmare", "blood",
        "cemetery", "seance", "poltergeist", "cult", "ritual", "evil spirit", "masked killer",
        "creature", "asylum", "cabin in the woods", "found footage", "jump scare", "undead",
        "occult", "dark forest",
    ),
    "western": (
        "cowboy", "sheriff", "wild west", "outlaw", "gunfight", "ranch", "saloon", "horse",
        "bounty hunter", "desert", "stagecoach", "native american", "duel", "frontier",
        "gold rush", "cattle drive", "train robbery", "revolver", "marshal", "homestead", "posse",
        "showdown", "prairie", "cavalry", "lasso", "rustler", "mining town", "wanted poster",
        "tumbleweed", "canyon",
    ),
    "sports": (
        "baseball", "boxing", "football", "basketball", "coach", "championship", "underdog",
        "training", "olympics", "team", "tournament", "athlete", "soccer", "hockey", "wrestling",
        "comeback", "final match", "locker room", "rivalry", "stadium", "golf", "racing", "tennis",
        "martial arts tournament", "draft", "season", "mvp", "scholarship", "cheerleader",
        "world cup",
    ),
    "music": (
        "musician", "band", "concert", "singer", "rock and roll", "jazz", "musical", "piano",
        "guitar", "songwriter", "record deal", "tour", "orchestra", "opera", "hip hop", "dance",
        "audition", "choir", "recording studio", "fame", "composer", "violin", "drummer",
        "talent show", "broadway", "punk", "rapper", "pop star", "music festival", "nightclub",
    ),
    "family": (
        "family", "father son relationship", "mother daughter relationship", "siblings", "divorce",
        "christmas", "holiday", "grandparents", "adoption", "single parent", "family reunion",
        "thanksgiving", "stepmother", "babysitter", "road trip", "twins", "family secret",
        "inheritance", "birthday", "pet", "dog", "summer vacation", "family business",
        "reconciliation", "new baby", "foster care", "sibling rivalry", "estranged father",
        "orphan", "suburbs",
    ),
    "high school": (
        "high school", "teenager", "prom", "coming of age", "bullying", "friendship", "graduation",
        "teacher", "student", "nerd", "popular girl", "detention", "school dance", "best friend",
        "first kiss", "virginity", "yearbook", "homecoming", "summer camp", "peer pressure",
        "college", "fraternity", "exam", "class reunion", "principal", "substitute teacher",
        "science fair", "school bus", "spring break", "teen party",
    ),
    "fantasy": (
        "magic", "dragon", "wizard", "sword and sorcery", "quest", "kingdom", "elf", "fairy tale",
        "prophecy", "sorcerer", "princess", "enchanted forest", "troll", "dwarf", "spell",
        "magic ring", "unicorn", "mythical creature", "castle", "knight", "giant", "potion",
        "fairy", "dark lord", "chosen one", "talking animal", "parallel world", "amulet", "goblin",
        "mermaid",
    ),
    "superhero": (
        "superhero", "based on comic", "superpower", "secret identity", "villain", "super villain",
        "vigilante", "mask", "cape", "origin story", "hero", "sidekick", "mad scientist",
        "invulnerability", "super strength", "flying", "justice", "alter ego", "arch enemy",
        "team of heroes", "shared universe", "destruction of city", "radioactive", "gadget",
        "sequel", "crime fighter", "secret lair", "henchman", "doomsday device", "save the world",
    ),
    "disaster": (
        "disaster", "earthquake", "tsunami", "volcano", "hurricane", "tornado", "flood", "fire",
        "meteor", "evacuation", "survival", "plane crash", "shipwreck", "epidemic", "virus",
        "pandemic", "quarantine", "avalanche", "rescue", "end of the world", "apocalypse",
        "nuclear war", "blizzard", "drought", "collapse", "sinking ship", "power outage", "chaos",
        "emergency", "firefighter",
    ),
    "adventure": (
        "treasure", "jungle", "expedition", "island", "explorer", "pirate", "map", "lost city",
        "archaeologist", "ancient temple", "shipwrecked", "mountain climbing", "safari", "cave",
        "booby trap", "ocean", "raft", "desert island", "artifact", "hidden treasure",
        "hot air balloon", "voyage", "tribe", "river", "sea monster", "ruins", "compass",
        "globetrotting", "mummy", "pyramid",
    ),
    "spy": (
        "secret agent", "cia", "espionage", "mi6", "double agent", "cold war", "assassin",
        "conspiracy", "kgb", "secret mission", "terrorist", "hacker", "surveillance", "bomb",
        "spy gadgets", "mole", "nuclear weapon", "safe house", "disguise", "codebreaker",
        "black ops", "betrayal", "interpol", "stolen documents", "briefcase", "embassy",
        "sabotage", "defector", "assassination plot", "cyber attack",
    ),
    "politics": (
        "president", "election", "politics", "washington d.c.", "senator", "white house",
        "campaign", "scandal", "government", "journalist", "newspaper", "whistleblower",
        "political corruption", "supreme court", "congress", "lobbyist", "speechwriter",
        "press conference", "cover-up", "activist", "protest", "revolution", "dictator", "coup",
        "prime minister", "cabinet", "diplomat", "leak", "impeachment", "vote",
    ),
    "biography": (
        "biography", "based on true story", "historical figure", "inventor", "artist", "painter",
        "writer", "poet", "scientist", "genius", "civil rights", "inspired by real events",
        "memoir", "entrepreneur", "mathematician", "pioneer", "activism", "legacy",
        "rise to power", "royalty", "queen", "king", "aristocrat", "19th century", "1960s",
        "explorer biography", "nobel prize", "tragedy", "autobiography", "period drama",
    ),
    "comedy": (
        "slapstick", "parody", "buddy comedy", "mistaken identity", "prank", "stand-up comedy",
        "satire", "road movie", "hangover", "bachelor party", "misfit", "gross out", "spoof",
        "farce", "awkward situation", "sketch", "practical joke", "comedian", "odd couple",
        "screwball", "cross dressing", "body swap", "dark comedy", "slacker", "mockumentary",
        "improv", "sitcom", "clown", "goofball", "chaos at party",
    ),
    "animation": (
        "animation", "cartoon", "talking animals", "computer animation", "toy", "anthropomorphism",
        "animal protagonist", "musical number", "stop motion", "anime", "cute creature",
        "children's adventure", "kids", "fairy godmother", "princess story", "ogre", "snowman",
        "penguin", "lion", "mouse", "fish", "dinosaur", "bear", "robot friend", "villainous cat",
        "magic kingdom", "sidekick animal", "forest animals", "sing along", "hand drawn",
    ),
    "thriller": (
        "suspense", "psychological thriller", "paranoia", "stalker", "obsession", "revenge",
        "twist ending", "amnesia", "hostage", "blackmail", "manipulation", "femme fatale",
        "cat and mouse", "trapped", "home invasion", "unreliable narrator", "doppelganger",
        "hallucination", "identity theft", "framed", "fugitive", "chase", "psychopath",
        "mind game", "gaslighting", "insomnia", "abduction", "missing person", "deception",
        "neo-noir",
    ),
    "martial arts": (
        "martial arts", "kung fu", "karate", "samurai", "ninja", "sword fight", "dojo",
        "master and student", "hong kong", "shaolin", "katana", "fight tournament", "honor",
        "yakuza", "triad", "hand to hand combat", "nunchucks", "sensei", "tokyo", "feudal japan",
        "ronin", "fight scene", "wuxia", "kickboxing", "muay thai", "bruce lee", "dragon style",
        "blood feud", "sword master", "temple",
    ),
    "legal drama": (
        "courtroom", "lawyer", "trial", "jury", "judge", "prosecutor", "defense attorney",
        "wrongful conviction", "death penalty", "lawsuit", "testimony", "verdict", "law firm",
        "legal drama", "appeal", "evidence", "cross examination", "perjury", "innocence",
        "district attorney", "plea bargain", "class action", "law school", "acquittal",
        "miscarriage of justice", "public defender", "closing argument", "subpoena", "sentencing",
        "courthouse",
    ),
    "medical": (
        "hospital", "doctor", "nurse", "cancer", "illness", "surgery", "disease",
        "terminal illness", "emergency room", "medical drama", "psychiatrist", "mental illness",
        "addiction", "rehabilitation", "alzheimer's disease", "depression", "therapy", "pregnancy",
        "organ transplant", "ambulance", "medical school", "coma", "wheelchair", "disability",
        "recovery", "hospice", "diagnosis", "paramedic", "clinic", "heart attack",
    ),
    "heist & gambling": (
        "casino", "las vegas", "gambling", "poker", "card game", "slot machine", "bet",
        "high roller", "cheating", "blackjack", "roulette", "jackpot", "bookie", "debt",
        "loan shark", "crew", "safecracker", "vault", "inside job", "getaway", "the big score",
        "double cross", "diamond", "art theft", "museum", "security system", "laser grid",
        "mastermind", "stolen painting", "jewel thief",
    ),
}
# fmt: on
# fmt: on

_MODIFIERS = (
    "old",
    "new",
    "small",
    "big",
    "red",
    "blue",
    "dark",
    "bright",
    "quiet",
    "loud",
    "broken",
    "secret",
    "empty",
    "crowded",
    "lonely",
    "rainy",
    "sunny",
    "cold",
    "warm",
    "strange",
)
_NOUNS = (
    "house",
    "car",
    "street",
    "photograph",
    "letter",
    "town",
    "apartment",
    "boat",
    "bridge",
    "hotel",
    "restaurant",
    "train",
    "office",
    "garden",
    "farm",
    "radio",
    "mirror",
    "key",
    "clock",
    "umbrella",
    "bicycle",
    "painting",
    "phone call",
    "diary",
    "suitcase",
)


def filler_keywords(n: int) -> list[str]:
    """`n` phrases that belong to no theme: "old house", "red car", ..., then numbered."""
    base = [f"{m} {x}" for x in _NOUNS for m in _MODIFIERS]
    return [
        base[i % len(base)] + ("" if i < len(base) else f" {i // len(base) + 1}") for i in range(n)
    ]


def _check() -> None:
    seen: dict[str, str] = {}
    for theme, words in THEMES.items():
        for w in words:
            if w in seen:
                raise AssertionError(f"{w!r} is in both {seen[w]!r} and {theme!r}")
            seen[w] = theme
    filler = set(filler_keywords(len(_MODIFIERS) * len(_NOUNS)))
    if filler & seen.keys():
        raise AssertionError(f"filler keywords in themes: {filler & seen.keys()}")


_check()
