from bookstore.recommendations.v1 import recommendations_pb2 as _recommendations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_PLACED: _ClassVar[OrderStatus]
    ORDER_STATUS_SHIPPED: _ClassVar[OrderStatus]
    ORDER_STATUS_DELIVERED: _ClassVar[OrderStatus]
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_PLACED: OrderStatus
ORDER_STATUS_SHIPPED: OrderStatus
ORDER_STATUS_DELIVERED: OrderStatus

class BookUpserted(_message.Message):
    __slots__ = ("book_id", "title", "author", "category", "price", "currency", "stock", "active", "year")
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    book_id: int
    title: str
    author: str
    category: _recommendations_pb2.BookCategory
    price: str
    currency: str
    stock: int
    active: bool
    year: int
    def __init__(self, book_id: _Optional[int] = ..., title: _Optional[str] = ..., author: _Optional[str] = ..., category: _Optional[_Union[_recommendations_pb2.BookCategory, str]] = ..., price: _Optional[str] = ..., currency: _Optional[str] = ..., stock: _Optional[int] = ..., active: _Optional[bool] = ..., year: _Optional[int] = ...) -> None: ...

class PurchaseLine(_message.Message):
    __slots__ = ("book_id", "title", "category", "quantity", "unit_price", "line_total", "promotion_discount", "voucher_discount")
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    book_id: int
    title: str
    category: _recommendations_pb2.BookCategory
    quantity: int
    unit_price: str
    line_total: str
    promotion_discount: str
    voucher_discount: str
    def __init__(self, book_id: _Optional[int] = ..., title: _Optional[str] = ..., category: _Optional[_Union[_recommendations_pb2.BookCategory, str]] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[str] = ..., line_total: _Optional[str] = ..., promotion_discount: _Optional[str] = ..., voucher_discount: _Optional[str] = ...) -> None: ...

class PurchaseCompleted(_message.Message):
    __slots__ = ("order_id", "user_id", "lines", "subtotal", "discount", "total", "currency", "promotion_id", "voucher_code")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_CODE_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    user_id: int
    lines: _containers.RepeatedCompositeFieldContainer[PurchaseLine]
    subtotal: str
    discount: str
    total: str
    currency: str
    promotion_id: int
    voucher_code: str
    def __init__(self, order_id: _Optional[int] = ..., user_id: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[PurchaseLine, _Mapping]]] = ..., subtotal: _Optional[str] = ..., discount: _Optional[str] = ..., total: _Optional[str] = ..., currency: _Optional[str] = ..., promotion_id: _Optional[int] = ..., voucher_code: _Optional[str] = ...) -> None: ...

class PromotionApplied(_message.Message):
    __slots__ = ("promotion_id", "promotion_name", "order_id", "user_id", "discount", "currency", "free_book_ids")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FREE_BOOK_IDS_FIELD_NUMBER: _ClassVar[int]
    promotion_id: int
    promotion_name: str
    order_id: int
    user_id: int
    discount: str
    currency: str
    free_book_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, promotion_id: _Optional[int] = ..., promotion_name: _Optional[str] = ..., order_id: _Optional[int] = ..., user_id: _Optional[int] = ..., discount: _Optional[str] = ..., currency: _Optional[str] = ..., free_book_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class OrderStatusChanged(_message.Message):
    __slots__ = ("order_id", "user_id", "status", "previous_status")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    user_id: int
    status: OrderStatus
    previous_status: OrderStatus
    def __init__(self, order_id: _Optional[int] = ..., user_id: _Optional[int] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., previous_status: _Optional[_Union[OrderStatus, str]] = ...) -> None: ...
