// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title AnchorRegistry
/// @notice Anchors Merkle-log checkpoints: per log id (SHA-256 of the log's origin), tree sizes
///         only grow, and the root of every anchored size stays readable. Only writers that the
///         owner authorised may anchor. Every refusal is a custom error.
contract AnchorRegistry {
    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not an authorised writer.
    error NotWriter(address caller);
    /// @notice The tree size is not above the largest size anchored for this log.
    error SizeNotIncreasing(bytes32 logId, uint64 latestSize, uint64 treeSize);
    /// @notice A zero root is never a valid Merkle root.
    error ZeroRoot();
    /// @notice The zero address cannot be the owner or a writer.
    error ZeroAddress();

    /// @notice A checkpoint of log `logId` at `treeSize` with root `root` was anchored.
    event Anchored(bytes32 indexed logId, uint64 treeSize, bytes32 root);
    event WriterAdded(address indexed writer);
    event WriterRemoved(address indexed writer);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    address public owner;
    mapping(address writer => bool) public isWriter;
    /// @dev One slot per log: the largest anchored size. A root takes a slot of its own.
    mapping(bytes32 logId => uint64) public latestSize;
    mapping(bytes32 logId => mapping(uint64 treeSize => bytes32 root)) private _roots;

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// @notice Anchor `root` as the root of log `logId` at `treeSize`.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 root) external {
        if (!isWriter[msg.sender]) revert NotWriter(msg.sender);
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 latest = latestSize[logId];
        if (treeSize <= latest) revert SizeNotIncreasing(logId, latest, treeSize);
        latestSize[logId] = treeSize;
        _roots[logId][treeSize] = root;
        emit Anchored(logId, treeSize, root);
    }

    /// @notice The root anchored for `logId` at `treeSize`, or zero if that size was not anchored.
    function rootAt(bytes32 logId, uint64 treeSize) external view returns (bytes32) {
        return _roots[logId][treeSize];
    }

    function addWriter(address writer) external onlyOwner {
        if (writer == address(0)) revert ZeroAddress();
        isWriter[writer] = true;
        emit WriterAdded(writer);
    }

    function removeWriter(address writer) external onlyOwner {
        isWriter[writer] = false;
        emit WriterRemoved(writer);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
