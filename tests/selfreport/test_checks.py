"""`check --deploy` says when participants' links would not reach the site."""

from selfreport import checks


def ids(found):
    return [message.id for message in found]


def test_a_local_or_plain_http_site_url_is_flagged(settings):
    for url in ("http://localhost:8000", "https://localhost", "http://trial.example.org"):
        settings.SITE_URL = url
        assert ids(checks.site_url_reaches_participants(None)) == ["selfreport.W001"], url
    settings.SITE_URL = "https://trial.example.org"
    assert checks.site_url_reaches_participants(None) == []


def test_the_provider_api_needs_its_address_and_sender(settings):
    settings.SMS_BACKEND = checks.HTTP_SENDER
    settings.SMS_API_URL, settings.SMS_FROM = "", "Research"
    assert ids(checks.text_message_provider_is_configured(None)) == ["selfreport.E001"]
    settings.SMS_API_URL = "https://sms.example.org/v1/messages"
    assert checks.text_message_provider_is_configured(None) == []
    settings.SMS_BACKEND, settings.SMS_API_URL = "selfreport.sms.ConsoleSender", ""
    assert checks.text_message_provider_is_configured(None) == []
