"""Word lists the demo draws its people and companies from (no external data)."""

from __future__ import annotations

FIRST_NAMES = (
    "Aaliyah", "Adrian", "Aisha", "Alejandro", "Amara", "Andrea", "Anja", "Arjun", "Beatriz",
    "Benjamin", "Camille", "Carlos", "Chen", "Chloé", "Daniel", "Dmitri", "Elena", "Elif",
    "Emma", "Ethan", "Fatima", "Felix", "Grace", "Hannah", "Hiro", "Ibrahim", "Ingrid", "Isabel",
    "Jamal", "Javier", "Jonas", "Julia", "Kai", "Karin", "Keisha", "Lars", "Leila", "Liam",
    "Lucía", "Malik", "Marco", "Maria", "Mateo", "Mei", "Mia", "Nadia", "Noah", "Olivia",
    "Omar", "Priya", "Rafael", "Rania", "Ravi", "Rosa", "Samuel", "Sofia", "Tariq", "Thomas",
    "Valentina", "Wei", "Yara", "Yusuf", "Zoë",
)  # fmt: skip

LAST_NAMES = (
    "Abe", "Adeyemi", "Almeida", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castillo",
    "Chen", "Costa", "Dubois", "Eriksson", "Fernández", "Fischer", "García", "Gupta", "Haddad",
    "Hansen", "Hoffmann", "Ivanova", "Jansen", "Johnson", "Kaur", "Kim", "Kowalski", "Larsen",
    "Lefèvre", "Martin", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Olsen", "Patel", "Pereira", "Petrov", "Popescu", "Reyes", "Rossi", "Santos", "Schmidt",
    "Singh", "Sato", "Silva", "Smith", "Tanaka", "Taylor", "Torres", "Van Dijk", "Wagner",
    "Wang", "Williams", "Yilmaz", "Zhang",
)  # fmt: skip

COMPANY_WORDS = (
    "Atlas", "Blue", "Cedar", "Clear", "Evergreen", "Falcon", "Golden", "Granite", "Harbor",
    "Iron", "Lumen", "Maple", "Nimbus", "North", "Orbit", "Polar", "Quantum", "Red", "Silver",
    "Sparrow", "Stellar", "Summit", "Swift", "Tidal", "Vertex", "Willow", "Zephyr",
)  # fmt: skip

# Second word of a company name and the industry it suggests.
COMPANY_KINDS = (
    ("Analytics", "Software"), ("Labs", "Biotech"), ("Systems", "Software"),
    ("Logistics", "Logistics"), ("Health", "Healthcare"), ("Robotics", "Manufacturing"),
    ("Cloud", "Software"), ("Foods", "Consumer goods"), ("Energy", "Energy"),
    ("Capital", "Financial services"), ("Software", "Software"), ("Networks", "Telecom"),
    ("Media", "Media"), ("Freight", "Logistics"), ("Security", "Software"),
    ("Dynamics", "Manufacturing"),
)  # fmt: skip

# Top-level domains, weighted: most companies are on .com.
TLDS = (".com",) * 7 + (".io", ".io", ".co", ".de", ".fr", ".nl")

# Titles by weight; the demo's rules and personas key on some of these words.
TITLES = (
    ("CTO", 3), ("VP Engineering", 4), ("Head of Engineering", 4), ("Engineering Manager", 6),
    ("Senior Software Engineer", 8), ("Staff Engineer", 3), ("DevOps Lead", 3),
    ("Software Engineering Intern", 2), ("CEO", 3), ("COO", 2), ("Founder", 1),
    ("VP Sales", 3), ("Account Executive", 5), ("Sales Development Rep", 4),
    ("Head of Marketing", 3), ("Growth Lead", 2), ("Chief People Officer", 2),
    ("HR Business Partner", 3), ("Head of Talent", 2), ("Technical Recruiter", 3),
    ("People Operations Manager", 2), ("HR Intern", 1), ("CFO", 2), ("Controller", 2),
    ("General Counsel", 1), ("Product Manager", 5), ("Head of Product", 2),
)  # fmt: skip

STATUSES = (("Open", 40), ("Working", 25), ("Nurture", 20), ("Unqualified", 8))
LEAD_SOURCES = ("inbound", "outbound", "webinar", "event", "referral")
PERSONAL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "proton.me", "gmx.de")
OPEN_STAGES = ("Discovery", "Demo", "Proposal", "Negotiation")
