"""A seeded generator of what a phone hears: voice commands, digit strings, times, names.

Every sentence is already normalised (vocabulary characters only), so it is both the text
given to the synthesizer and the transcript. Output depends only on the ``random.Random``
passed in.
"""

from __future__ import annotations

import random

from edgetune.data._text import number_to_words

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FIRST_NAMES = [
    "olivia", "liam", "emma", "noah", "ava", "james", "sophia", "lucas", "mia", "mateo", "amelia",
    "ethan", "harper", "aiden", "ella", "daniel", "grace", "samuel", "chloe", "david", "priya",
    "arjun", "wei", "mei", "hiroshi", "yuki", "fatima", "omar", "sofia", "diego", "aisha",
    "kwame", "ingrid", "lars", "nadia", "ivan", "chen", "rosa", "jamal", "leila", "tom", "anna",
]
LAST_NAMES = [
    "garcia", "smith", "johnson", "brown", "nguyen", "patel", "kim", "lee", "martinez", "lopez",
    "wilson", "anderson", "taylor", "thomas", "moore", "jackson", "white", "harris", "clark",
    "lewis", "walker", "young", "khan", "singh", "cohen", "murphy", "oconnor", "rossi", "muller",
]
FAMILY = ["mom", "dad", "grandma", "grandpa", "my sister", "my brother", "my wife", "my husband",
          "home", "work", "the office", "the doctor"]
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "garage", "office", "hallway", "porch"]
DEVICES = ["lights", "fan", "heater", "television", "radio", "music", "alarm", "air conditioner", "wifi",
           "bluetooth", "flashlight", "do not disturb", "airplane mode"]
APPS = ["camera", "calendar", "maps", "messages", "settings", "email", "weather", "clock",
        "photos", "notes", "calculator", "music player"]
PLACES = ["the airport", "the train station", "the nearest gas station", "downtown", "the mall",
          "the hospital", "the library", "the beach", "the park", "a coffee shop", "the pharmacy"]
CITIES = ["london", "paris", "tokyo", "new york", "chicago", "sydney", "toronto", "berlin",
          "madrid", "dublin", "seattle", "boston", "denver", "mumbai", "lagos", "rome"]
GENRES = ["jazz", "rock", "classical music", "the news", "podcasts", "country", "hip hop",
          "something relaxing", "my playlist", "the radio"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
            "today", "tomorrow", "tonight"]
MESSAGES = ["i am running late", "on my way", "call me back", "see you soon", "i will be home at six",
            "can you pick up milk", "thanks for dinner", "where are you", "happy birthday",
            "the meeting moved to three", "don't forget the keys", "i'm at the store"]
UNITS = ["seconds", "minutes", "hours"]
POLITE = ["", "", "", "please ", "hey phone ", "okay ", "can you "]


def _name(rng: random.Random) -> str:
    first = rng.choice(FIRST_NAMES)
    return first if rng.random() < 0.4 else f"{first} {rng.choice(LAST_NAMES)}"


def _contact(rng: random.Random) -> str:
    return rng.choice(FAMILY) if rng.random() < 0.35 else _name(rng)


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_DIGITS) for _ in range(rng.randint(lo, hi)))


def _time(rng: random.Random) -> str:
    hour = number_to_words(rng.randint(1, 12))
    minute = rng.choice([0, 0, 15, 30, 45, rng.randint(1, 59)])
    if minute == 0:
        clock = f"{hour} o'clock" if rng.random() < 0.3 else hour
    elif minute < 10:
        clock = f"{hour} oh {number_to_words(minute)}"
    else:
        clock = f"{hour} {number_to_words(minute)}"
    return clock + rng.choice(["", "", " am", " pm", " in the morning", " tonight"])


def _duration(rng: random.Random) -> str:
    unit = rng.choice(UNITS)
    n = rng.randint(2, 90 if unit != "hours" else 12)
    return rng.choice([f"{number_to_words(n)} {unit}", f"one {unit[:-1]}", f"a {unit[:-1]}"
                       if unit != "hours" else "an hour", f"{number_to_words(n)} {unit}"])


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(16)
    if kind == 0:
        return f"set a timer for {_duration(rng)}"
    if kind == 1:
        return rng.choice(["wake me up at ", "set an alarm for ", "remind me at "]) + _time(rng)
    if kind == 2:
        return f"{rng.choice(['call', 'phone', 'dial', 'video call'])} {_contact(rng)}"
    if kind == 3:
        return f"{rng.choice(['text', 'message', 'send a message to'])} {_contact(rng)} {rng.choice(MESSAGES)}"
    if kind == 4:
        room = f" in the {rng.choice(ROOMS)}" if rng.random() < 0.5 else ""
        return f"turn {rng.choice(['on', 'off'])} the {rng.choice(DEVICES)}{room}"
    if kind == 5:
        return _digits(rng, 3, 10)
    if kind == 6:
        return f"{rng.choice(['dial', 'call', 'my code is', 'the number is', 'enter'])} {_digits(rng, 4, 10)}"
    if kind == 7:
        return rng.choice(["what's the weather", "will it rain", "how cold is it", "what's the temperature"]) + \
            rng.choice(["", f" in {rng.choice(CITIES)}", f" {rng.choice(WEEKDAYS)}"])
    if kind == 8:
        return f"{rng.choice(['navigate to', 'directions to', 'how far is', 'take me to'])} {rng.choice(PLACES)}"
    if kind == 9:
        return f"{rng.choice(['play', 'put on', 'shuffle'])} {rng.choice(GENRES)}"
    if kind == 10:
        return f"{rng.choice(['open', 'launch', 'close'])} {rng.choice(APPS)}"
    if kind == 11:
        return rng.choice(["volume up", "volume down", "next song", "pause", "stop", "skip", "go back",
                           "mute", "louder", "quieter", "cancel", "yes", "no", "repeat that"])
    if kind == 12:
        return f"set the {rng.choice(['volume', 'brightness', 'temperature'])} to {number_to_words(rng.randint(1, 100))}" + \
            rng.choice(["", " percent", " degrees"])
    if kind == 13:
        return rng.choice(["what time is it", "what's the time", "what time is it"]) + \
            rng.choice(["", f" in {rng.choice(CITIES)}", f" in {rng.choice(CITIES)}", f" in {rng.choice(CITIES)}"])
    if kind == 14:
        return f"schedule a meeting with {_name(rng)} {rng.choice(WEEKDAYS)} at {_time(rng)}"
    return f"{rng.choice(['add', 'put'])} {rng.choice(['milk', 'eggs', 'bread', 'coffee', 'apples', 'rice'])} " \
        f"to my {rng.choice(['shopping list', 'list', 'cart'])}"


def make_sentence(rng: random.Random) -> str:
    """One prompt, e.g. 'set a timer for ten minutes', 'four one five two', 'call olivia garcia'."""
    text = _sentence(rng)
    if rng.random() < 0.25:
        text = rng.choice(POLITE) + text
    return " ".join(text.split())
