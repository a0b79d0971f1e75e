"""The vocabulary the generator draws from: name parts, domains, titles, statuses, stages.

Weights are rough shapes of a B2B CRM: most companies on `.com`, a long tail of
country suffixes, titles spread over functions and seniorities, most people with no
lead status, deals mostly closed.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Company names are two parts glued together ("Bright" + "wave"), a third of them with a
# suffix word; the domain label is the glued name, so labels repeat across suffixes.
NAME_HEADS = _words(
    "acme bright blue north south east west silver golden iron stone river lake harbor "
    "summit peak cedar maple oak pine birch aspen willow falcon eagle hawk raven fox wolf "
    "bear lion tiger orbit nova stellar quantum vertex apex zenith prime core nimbus cirrus "
    "atlas titan vector pixel data cloud byte logic smart swift rapid true clear bold grand "
    "green red black white urban metro civic alpha beta gamma delta omega sigma terra aqua "
    "solar lunar polar cobalt crimson indigo amber jade onyx ruby sapphire granite"
)
NAME_TAILS = _words(
    "wave works labs soft ware line point path bridge gate field forge craft mind sight "
    "scale stack base hub port shift flow spark leaf root grid link net tech ly io ify "
    "stream cast mark trust guard sense loop well rock side view dock yard"
)
NAME_SUFFIXES = ("Inc", "Group", "Systems", "Solutions", "Partners", "Holdings", "Analytics")

# Public suffixes with weights; `.co.uk`, `.com.au` exercise the suffix list (R18).
TLDS = (
    ("com", 60),
    ("io", 7),
    ("co", 4),
    ("net", 4),
    ("org", 3),
    ("co.uk", 6),
    ("de", 4),
    ("fr", 2),
    ("com.au", 2),
    ("ca", 2),
    ("nl", 1),
    ("ai", 3),
    ("es", 1),
    ("com.br", 1),
)
# Near-miss variants of a company: the same label under a country suffix (acme.co.uk).
VARIANT_TLDS = ("co.uk", "de", "fr", "com.au", "ca", "io", "net", "eu")

INDUSTRIES = (
    ("Software", 22),
    ("Financial Services", 10),
    ("Healthcare", 8),
    ("Manufacturing", 9),
    ("Retail", 7),
    ("Education", 5),
    ("Government", 3),
    ("Media", 4),
    ("Telecommunications", 3),
    ("Staffing", 3),
    ("Consulting", 6),
    ("Logistics", 4),
    ("Energy", 3),
    ("Non-profit", 3),
    ("Real Estate", 4),
    ("Insurance", 6),
)
TIERS = (("Enterprise", 8), ("Mid-Market", 25), ("SMB", 55), ("Strategic", 2), ("", 10))
REGIONS = ("EMEA", "NA", "APAC", "LATAM")

FIRST_NAMES = _words(
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara "
    "richard susan joseph jessica thomas sarah charles karen christopher nancy daniel lisa "
    "matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily "
    "andrew donna joshua michelle kenneth carol kevin amanda brian dorothy george melissa "
    "timothy deborah ronald stephanie jason rebecca edward sharon jeffrey laura ryan cynthia "
    "jacob kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry "
    "pamela justin emma scott nicole brandon helen benjamin samantha samuel katherine gregory "
    "christine alexander debra frank rachel patrick carolyn raymond janet jack catherine "
    "dennis maria jerry heather tyler diane aaron ruth jose julie adam olivia henry joyce "
    "nathan virginia douglas victoria zachary kelly peter lauren kyle christina noah joan "
    "ethan evelyn jeremy judith walter megan christian andrea keith cheryl roger hannah "
    "terry jacqueline austin martha sean gloria gerald teresa carl ann harold sara dylan "
    "madison arthur frances lawrence kathryn jordan janice jesse jean bryan abigail billy "
    "alice bruce judy gabriel sophia joe grace logan denise albert amber willie doris alan "
    "marilyn juan danielle wayne beverly elijah isabella randy theresa roy diana vincent "
    "natalie ralph brittany eugene charlotte russell marie bobby kayla mason alexis philip "
    "lori louis hans sven lars anke ingrid yuki hiro wei ling priya raj arjun ana lucia"
)
LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter "
    "roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart "
    "morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed "
    "kelly howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray "
    "mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez "
    "powell jenkins perry russell sullivan bell coleman butler henderson barnes gonzales "
    "fisher vasquez simmons romero jordan patterson alexander hamilton graham reynolds "
    "griffin wallace moreno west cole hayes bryant herrera gibson ellis tran medina aguilar "
    "stevens murray ford castro marshall owens harrison fernandez mcdonald woods washington "
    "kennedy wells vargas henry chen freeman webb tucker guzman burns crawford olson simpson "
    "porter hunter gordon mendez silva shaw snyder mason dixon munoz hunt hicks holmes "
    "palmer wagner black robertson boyd rose stone salazar fox warren mills meyer rice "
    "schmidt garza daniels ferguson nichols stephens soto weaver ryan gardner payne grant "
    "dunn kelley spencer hawkins arnold pierce hansen peters santos hart bradley knight "
    "elliott cunningham duncan armstrong hudson carroll lane riley andrews ruiz mueller "
    "schneider fischer weber becker schulz dubois moreau laurent tanaka suzuki sato wang li "
    "zhang liu singh kumar sharma rossi russo ferrari esposito bianchi romano jansen devries"
)

# Titles: a function and a seniority; a few that exclusions typically target.
FUNCTIONS = (
    ("Sales", 14),
    ("Marketing", 12),
    ("Engineering", 16),
    ("Operations", 8),
    ("Finance", 7),
    ("Human Resources", 5),
    ("IT", 8),
    ("Product", 6),
    ("Customer Success", 5),
    ("Legal", 2),
    ("Procurement", 3),
    ("Revenue Operations", 3),
    ("Data", 4),
    ("Security", 3),
    ("Design", 2),
    ("Talent Acquisition", 2),
)
SENIORITIES = (
    ("{f} Manager", 22),
    ("Senior {f} Manager", 8),
    ("Director of {f}", 10),
    ("Senior Director, {f}", 3),
    ("VP of {f}", 6),
    ("SVP {f}", 1),
    ("Head of {f}", 5),
    ("{f} Specialist", 12),
    ("{f} Analyst", 9),
    ("{f} Coordinator", 5),
    ("{f} Associate", 5),
    ("{f} Lead", 6),
    ("{f} Intern", 2),
    ("{f} Consultant", 3),
)
SPECIAL_TITLES = (
    ("Chief Executive Officer", 6),
    ("CEO", 4),
    ("Founder", 4),
    ("Co-Founder & CTO", 2),
    ("Chief Financial Officer", 2),
    ("Chief Marketing Officer", 2),
    ("Chief Revenue Officer", 2),
    ("Owner", 3),
    ("President", 2),
    ("Student", 2),
    ("PhD Candidate", 1),
    ("Recruiter", 3),
    ("Technical Recruiter", 2),
    ("Account Executive", 8),
    ("Sales Development Representative", 6),
    ("Business Development Representative", 4),
    ("Software Engineer", 12),
    ("Senior Software Engineer", 8),
    ("Executive Assistant", 3),
    ("Office Manager", 3),
    ("Consultant", 4),
    ("Freelancer", 2),
    ("", 6),
)
STATUSES = (
    ("", 46),
    ("New", 12),
    ("Working", 8),
    ("Nurturing", 10),
    ("Qualified", 6),
    ("Unqualified", 6),
    ("Customer", 5),
    ("Former Customer", 2),
    ("Bad Data", 2),
    ("Do Not Contact", 1),
    ("Competitor", 1),
    ("Partner", 1),
)
PERSONAS = ("economic buyer", "champion", "end user", "technical evaluator", "gatekeeper")

STAGES = (
    ("Prospecting", 10, False),
    ("Qualification", 10, False),
    ("Needs Analysis", 7, False),
    ("Proposal", 6, False),
    ("Negotiation", 4, False),
    ("Closed Won", 28, True),
    ("Closed Lost", 35, True),
)
CONTACT_ROLES = ("Decision Maker", "Economic Buyer", "Evaluator", "Influencer", "Champion")
