"""The biller's SMS service on the short number 1111: "code" gets a fidelio code back."""


def fidelio_service(*, sender: str, text: str) -> None:
    raise NotImplementedError
